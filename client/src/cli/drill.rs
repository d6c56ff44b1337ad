//! `muster drill ...`: drills through a running server (never touching its
//! live data): run a script with a progress bar, replay a stored run, show
//! or list reports, export a recorded incident as a script, and compare two
//! runs side by side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use muster_client::{all_pages, proto as pb, Client};
use tokio_stream::StreamExt;

use super::output::{self, out, Output};

/// Drill subcommands.
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Runs a drill script on the server (its own engine: nothing live
    /// changes) with a progress bar, then prints the report. Fails when an
    /// expectation failed.
    Run {
        /// The script (TOML); the fixtures it names are read next to it and sent along.
        file: PathBuf,
        /// Overrides the script's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Replays a stored run and says whether it comes out the same.
    Replay {
        /// Run id (R<number>).
        run: String,
    },
    /// Prints a stored run's report (or writes it as one HTML file).
    Report {
        /// Run id (R<number>).
        run: String,
        /// Write the report as one self-contained HTML file here instead.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Lists the stored runs.
    List,
    /// Writes a recorded incident as a drill script (to stdout, or a file).
    Export {
        /// The incident.
        incident: String,
        /// Where to write the script.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Puts two runs (say, one script with two plan versions) side by side.
    Compare {
        /// First run id.
        first: String,
        /// Second run id.
        second: String,
        /// Write both reports side by side as one HTML file here instead.
        #[arg(long)]
        html: Option<PathBuf>,
    },
}

/// The fixture names a script gives (`fixture = "a"` or `["a", "b"]`).
fn fixture_names(text: &str) -> Vec<String> {
    let Ok(value) = text.parse::<toml::Table>() else { return Vec::new() };
    match value.get("fixture") {
        Some(toml::Value::String(name)) => vec![name.clone()],
        Some(toml::Value::Array(names)) => names.iter().filter_map(|name| name.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

fn read_script(file: &Path) -> anyhow::Result<(String, BTreeMap<String, String>)> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let folder = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut files = BTreeMap::new();
    for name in fixture_names(&text) {
        let path = folder.join(&name);
        let fixture = std::fs::read_to_string(&path).with_context(|| format!("reading fixture {}", path.display()))?;
        files.insert(name, fixture);
    }
    Ok((text, files))
}

fn print_report(report: &pb::DrillReport, output: Output) -> anyhow::Result<()> {
    if output.json {
        return output.json(report);
    }
    out!("{}", report.text.trim_end());
    if !report.run_id.is_empty() {
        out!("run {}", report.run_id);
    }
    Ok(())
}

fn failed(report: &pb::DrillReport) -> anyhow::Result<()> {
    if report.passed {
        return Ok(());
    }
    let failed = report.expectations.iter().filter(|verdict| !verdict.passed).count();
    anyhow::bail!("{failed} expectation(s) failed in run {}", report.run_id)
}

/// Runs a `muster drill` subcommand.
pub async fn run(client: &Client, command: DrillCommand, output: Output) -> anyhow::Result<()> {
    let mut drills = client.drills();
    match command {
        DrillCommand::Run { file, seed } => {
            let (script, files) = read_script(&file)?;
            let request = pb::RunDrillRequest {
                script,
                seed: seed.unwrap_or(0),
                files: files.into_iter().collect(),
                // The file's own name, as `musterd drill run` gives it: names reach the log.
                name: file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default(),
            };
            let mut stream = drills.run_drill(request).await?.into_inner();
            let bar = indicatif::ProgressBar::new(0);
            if output.json {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} injects  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            let mut report = None;
            while let Some(update) = stream.next().await {
                match update?.update {
                    Some(pb::drill_progress::Update::Progress(progress)) => {
                        bar.set_length(u64::from(progress.injects_total));
                        bar.set_position(u64::from(progress.injects_done));
                        let at = output::time(progress.virtual_time.as_ref());
                        bar.set_message(format!("{at}  {}", progress.message));
                    }
                    Some(pb::drill_progress::Update::Report(done)) => report = Some(done),
                    None => {}
                }
            }
            bar.finish_and_clear();
            let report = report.context("the server ended the run without a report")?;
            print_report(&report, output)?;
            failed(&report)
        }
        DrillCommand::Replay { run } => {
            let report = drills.replay_drill(pb::ReplayDrillRequest { run_id: run.clone() }).await?.into_inner();
            if output.json {
                return output.json(&report);
            }
            if report.replay_matches {
                out!("replay of {run} matches: {} events, digest {}", report.events, report.digest);
                Ok(())
            } else {
                anyhow::bail!("replay of {run} differs: {}", report.divergence)
            }
        }
        DrillCommand::Report { run, html: Some(path) } => {
            let request = pb::RenderDrillReportRequest { run_id: run, compare_with: String::new() };
            let document = drills.render_drill_report(request).await?.into_inner();
            output::write_file(&path, &document.body)?;
            out!("wrote {}", path.display());
            Ok(())
        }
        DrillCommand::Compare { first, second, html: Some(path) } => {
            let request = pb::RenderDrillReportRequest { run_id: first, compare_with: second };
            let document = drills.render_drill_report(request).await?.into_inner();
            output::write_file(&path, &document.body)?;
            out!("wrote {}", path.display());
            Ok(())
        }
        DrillCommand::Report { run, html: None } => {
            let report = drills.get_drill_report(pb::GetDrillReportRequest { run_id: run }).await?.into_inner();
            print_report(&report, output)
        }
        DrillCommand::List => {
            let runs = all_pages(None, |page_token| {
                let mut drills = drills.clone();
                async move {
                    let page =
                        drills.list_drill_runs(pb::ListDrillRunsRequest { page_size: 1_000, page_token }).await?;
                    let page = page.into_inner();
                    Ok((page.runs, page.next_page_token))
                }
            })
            .await?;
            if output.json {
                return output.json(&runs);
            }
            let mut table = output::table(&["run", "drill", "seed", "events", "expectations", "digest"]);
            for run in &runs {
                table.add_row(vec![
                    run.run_id.clone(),
                    run.name.clone(),
                    run.seed.to_string(),
                    run.events.to_string(),
                    if run.passed { "passed".to_owned() } else { "FAILED".to_owned() },
                    run.digest.chars().take(16).collect(),
                ]);
            }
            out!("{table}");
            Ok(())
        }
        DrillCommand::Export { incident, out: path } => {
            let script = drills
                .export_incident_as_drill(pb::ExportIncidentAsDrillRequest { incident_id: incident })
                .await?
                .into_inner()
                .script;
            match path {
                Some(path) => {
                    output::write_file(&path, &script)?;
                    out!("wrote {}", path.display());
                }
                None => out!("{}", script.trim_end()),
            }
            Ok(())
        }
        DrillCommand::Compare { first, second, html: None } => {
            let left = drills.get_drill_report(pb::GetDrillReportRequest { run_id: first.clone() }).await?.into_inner();
            let right =
                drills.get_drill_report(pb::GetDrillReportRequest { run_id: second.clone() }).await?.into_inner();
            if output.json {
                return output.json(&serde_json::json!({ "first": left, "second": right }));
            }
            out!("{}", compare(&first, &left, &second, &right));
            Ok(())
        }
    }
}

fn minutes(value: f64) -> String {
    if value < 0.0 {
        "-".to_owned()
    } else {
        format!("{value:.0} min")
    }
}

/// Two reports side by side: the totals, each need's fill and arrival
/// times, and each expectation.
fn compare(first: &str, left: &pb::DrillReport, second: &str, right: &pb::DrillReport) -> String {
    let mut text = String::new();
    let passed = |report: &pb::DrillReport| {
        let count = report.expectations.iter().filter(|verdict| verdict.passed).count();
        format!("{count} of {}", report.expectations.len())
    };
    let mut totals = output::table(&["", first, second]);
    totals.add_row(vec!["drill".to_owned(), left.name.clone(), right.name.clone()]);
    totals.add_row(vec!["seed".to_owned(), left.seed.to_string(), right.seed.to_string()]);
    totals.add_row(vec!["events".to_owned(), left.events.to_string(), right.events.to_string()]);
    totals.add_row(vec![
        "total distance".to_owned(),
        format!("{:.1} km", left.total_distance_km),
        format!("{:.1} km", right.total_distance_km),
    ]);
    totals.add_row(vec![
        "unmet needs".to_owned(),
        left.unmet_needs.len().to_string(),
        right.unmet_needs.len().to_string(),
    ]);
    totals.add_row(vec![
        "reserve overrides".to_owned(),
        left.reserve_overrides.len().to_string(),
        right.reserve_overrides.len().to_string(),
    ]);
    totals.add_row(vec!["expectations passed".to_owned(), passed(left), passed(right)]);
    text.push_str(&format!("{totals}\n"));
    let by_need = |report: &pb::DrillReport| -> BTreeMap<(String, String), pb::NeedFillTime> {
        report.fill_times.iter().map(|need| ((need.incident_id.clone(), need.need_id.clone()), need.clone())).collect()
    };
    let (left_needs, right_needs) = (by_need(left), by_need(right));
    let keys: BTreeSet<&(String, String)> = left_needs.keys().chain(right_needs.keys()).collect();
    let mut needs = output::table(&[
        "incident",
        "need",
        "what",
        "filled (first)",
        "filled (second)",
        "reached (first)",
        "reached (second)",
    ]);
    for key in keys {
        let (one, two) = (left_needs.get(key), right_needs.get(key));
        let what = one.or(two).map(|need| need.what.clone()).unwrap_or_default();
        let fill = |need: Option<&pb::NeedFillTime>| {
            need.map(|need| minutes(need.fill_minutes)).unwrap_or_else(|| "(none)".to_owned())
        };
        let reach = |need: Option<&pb::NeedFillTime>| {
            need.map(|need| minutes(need.reach_minutes)).unwrap_or_else(|| "(none)".to_owned())
        };
        needs.add_row(vec![key.0.clone(), key.1.clone(), what, fill(one), fill(two), reach(one), reach(two)]);
    }
    text.push_str(&format!("{needs}\n"));
    let verdicts = |report: &pb::DrillReport| -> BTreeMap<String, bool> {
        report.expectations.iter().map(|verdict| (verdict.description.clone(), verdict.passed)).collect()
    };
    let (left_verdicts, right_verdicts) = (verdicts(left), verdicts(right));
    let descriptions: BTreeSet<&String> = left_verdicts.keys().chain(right_verdicts.keys()).collect();
    let mut expectations = output::table(&["expectation", first, second]);
    let show = |verdict: Option<&bool>| match verdict {
        Some(true) => "pass".to_owned(),
        Some(false) => "FAIL".to_owned(),
        None => "-".to_owned(),
    };
    for description in descriptions {
        expectations.add_row(vec![
            description.clone(),
            show(left_verdicts.get(description)),
            show(right_verdicts.get(description)),
        ]);
    }
    text.push_str(&format!("{expectations}"));
    text
}
