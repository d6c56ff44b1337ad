//! Tables for people, JSON for scripts.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde::Serialize;

/// Writes one line to standard output. A closed pipe (`muster ... | head`)
/// ends the program quietly instead of panicking, as command-line tools do.
pub fn write_line(arguments: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(arguments).and_then(|()| stdout.write_all(b"\n")) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("muster: cannot write the output: {error}");
        std::process::exit(1);
    }
}

/// Writes `body` to the file at `path`, saying which file failed.
pub fn write_file(path: &std::path::Path, body: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))
}

/// `out!` that survives a closed pipe (see [`write_line`]).
macro_rules! out {
    ($($argument:tt)*) => {
        $crate::cli::output::write_line(format_args!($($argument)*))
    };
}
pub(crate) use out;

/// How to print results.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// JSON instead of tables.
    pub json: bool,
}

impl Output {
    /// Prints a value as pretty JSON.
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        write_line(format_args!("{}", serde_json::to_string_pretty(value)?));
        Ok(())
    }

    /// Prints one JSON value per line (for streams).
    pub fn json_line<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        write_line(format_args!("{}", serde_json::to_string(value)?));
        Ok(())
    }
}

/// A table with a header row, sized to the terminal.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_header(header);
    table
}

/// A protobuf timestamp as RFC 3339 (UTC), or `-`.
pub fn time(value: Option<&muster_client::Timestamp>) -> String {
    value
        .and_then(|value| chrono::DateTime::from_timestamp(value.seconds, u32::try_from(value.nanos).unwrap_or(0)))
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".to_owned())
}

/// A position as `lat, lng`, or `-`.
pub fn position(value: Option<&muster_client::proto::LatLng>) -> String {
    value.map(|value| format!("{:.5}, {:.5}", value.lat, value.lng)).unwrap_or_else(|| "-".to_owned())
}

/// An enum's protobuf name without its prefix: `TEAM_STATUS_AVAILABLE` -> `AVAILABLE`.
pub fn enum_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_owned()
}
