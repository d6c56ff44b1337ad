//! `muster assignment ...` and `muster dispatch`: who serves which need.

use muster_client::proto as pb;

use super::output;

/// An assignment status's name: `DISPATCHED`.
pub fn status_name(status: i32) -> String {
    let name = pb::AssignmentStatus::try_from(status).map(|status| status.as_str_name()).unwrap_or("?");
    output::enum_name(name, "ASSIGNMENT_STATUS_")
}
