//! The CLI's subcommands, one module per area, and what they share.

pub mod assignment;
pub mod audit;
pub mod bench;
pub mod drill;
pub mod export;
pub mod incident;
pub mod output;
pub mod parse;
pub mod plan;
pub mod reserve;
pub mod team;

use muster_client::Client;
use tonic_health::pb::{health_check_response::ServingStatus, HealthCheckRequest};

use output::{out, Output};

/// `muster health`.
pub async fn health(client: &Client, output: Output) -> anyhow::Result<()> {
    let response = client.health().check(HealthCheckRequest { service: String::new() }).await?.into_inner();
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    if output.json {
        out!("{}", serde_json::json!({ "status": status.as_str_name() }));
    } else {
        out!("{}", status.as_str_name());
    }
    if status != ServingStatus::Serving {
        anyhow::bail!("the server is not serving");
    }
    Ok(())
}

/// `muster import FILE`: a fixture into the server, all or nothing.
pub async fn import(client: &Client, path: &std::path::Path, output: Output) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let toml = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let request = muster_client::proto::ImportRequest {
        request_id: muster_client::new_request_id("import"),
        name: path.display().to_string(),
        toml,
    };
    let imports = client.imports();
    let response = muster_client::retry!(imports, import, request)?;
    if output.json {
        return output.json(&response);
    }
    if response.created.is_empty() && response.changed.is_empty() {
        out!("{}: nothing changed ({} entries already match)", path.display(), response.unchanged);
        return Ok(());
    }
    for created in &response.created {
        out!("created  {created}");
    }
    for changed in &response.changed {
        out!("changed  {changed}");
    }
    out!(
        "{}: {} created, {} changed, {} unchanged",
        path.display(),
        response.created.len(),
        response.changed.len(),
        response.unchanged
    );
    Ok(())
}

/// One line for an error: a gRPC status as its code, message and the field
/// it names; anything else as its chain of causes.
pub fn describe_error(error: &anyhow::Error) -> String {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        use tonic_types::StatusExt;
        let mut line = format!("{:?}: {}", status.code(), status.message());
        if let Some(bad_request) = status.get_details_bad_request() {
            let fields: Vec<_> =
                bad_request.field_violations.iter().map(|violation| violation.field.as_str()).collect();
            if !fields.is_empty() && !status.message().starts_with(fields[0]) {
                line.push_str(&format!(" (field {})", fields.join(", ")));
            }
        }
        return line;
    }
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        line.push_str(": ");
        line.push_str(&cause.to_string());
    }
    line
}
