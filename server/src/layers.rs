//! A test that reads the server's sources and keeps the layers apart, as
//! ARCHITECTURE.md says: the domain knows nothing of tokio, tonic, sled or
//! prost, nor of the dispatcher; only `store/` touches sled; only `grpc/`
//! and the wiring file (`server.rs`) know protobuf types.

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `src/`, with its path relative to `src/`.
    fn sources() -> Vec<(String, String)> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path: PathBuf = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else if path.extension().is_some_and(|extension| extension == "rs") {
                    let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                    out.push((relative, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        // This checker quotes the names it looks for.
        out.retain(|(path, _)| path != "layers.rs");
        out.sort();
        out
    }

    /// The code of a file without its comments (doc comments name the
    /// crates a layer must not use, and that is allowed).
    fn code(text: &str) -> String {
        text.lines()
            .map(|line| match line.find("//") {
                Some(at) if !line[..at].contains('"') => &line[..at],
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The lines of `text` that use one of `names` as a path (`name::`), or
    /// name it in a `use` line at all (which catches `use name as alias;`).
    fn uses(text: &str, names: &[&str]) -> Vec<String> {
        code(text)
            .lines()
            .filter(|line| {
                let importing = line.trim_start().starts_with("use ") || line.trim_start().starts_with("pub use ");
                names.iter().any(|name| {
                    line.match_indices(name).any(|(at, _)| {
                        let before = line[..at].chars().last();
                        let after = &line[at + name.len()..];
                        let whole_word = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
                            && after.chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                        whole_word && (after.starts_with("::") || importing)
                    })
                })
            })
            .map(|line| line.trim().to_owned())
            .collect()
    }

    fn broken(rule: &str, allowed: impl Fn(&str) -> bool, crates: &[&str]) -> Vec<String> {
        sources()
            .iter()
            .filter(|(path, _)| !allowed(path))
            .flat_map(|(path, text)| uses(text, crates).into_iter().map(move |line| format!("{rule}: {path}: {line}")))
            .collect()
    }

    #[test]
    fn the_layers_stay_apart() {
        let mut broken_rules = Vec::new();
        broken_rules.extend(broken(
            "the domain knows nothing of transport, storage or the layers around it",
            |path| !path.starts_with("domain/"),
            &[
                "tokio",
                "tokio_stream",
                "tonic",
                "tonic_types",
                "tonic_health",
                "sled",
                "prost",
                "prost_types",
                "muster_proto",
                "engine",
                "store",
                "grpc",
                "server",
                "drill",
            ],
        ));
        broken_rules.extend(broken(
            "the domain does not know the dispatcher (it is handed a Planner)",
            |path| !path.starts_with("domain/"),
            &["dispatch"],
        ));
        broken_rules.extend(broken("only store/ touches sled", |path| path.starts_with("store/"), &["sled"]));
        broken_rules.extend(broken(
            "only grpc/ and the wiring file know protobuf types",
            |path| path.starts_with("grpc/") || path == "server.rs",
            &["muster_proto", "pb", "prost", "prost_types"],
        ));
        assert!(broken_rules.is_empty(), "{broken_rules:#?}");
    }

    #[test]
    fn the_checker_sees_a_use_and_ignores_comments() {
        assert_eq!(uses("use sled::Db;", &["sled"]), vec!["use sled::Db;"]);
        assert_eq!(uses("    let x = tokio::spawn(f);", &["tokio"]).len(), 1);
        assert!(uses("//! nothing here knows tokio::spawn", &["tokio"]).is_empty());
        assert!(uses("let sledge = my_sled::x;", &["sled"]).is_empty());
        assert!(uses("let s = \"pb::Team\";", &["pb"]).len() == 1, "strings are code here: a conservative check");
        assert_eq!(uses("use crate::dispatch as d;", &["dispatch"]).len(), 1, "an alias is still a use");
        assert_eq!(uses("use muster_proto as mp;", &["muster_proto"]).len(), 1);
        assert!(uses("use super::dispatching::Planner;", &["dispatch"]).is_empty(), "a longer name is another name");
        assert!(uses("let x = tokio_stream::iter(v);", &["tokio"]).is_empty());
        assert_eq!(uses("let x = tokio_stream::iter(v);", &["tokio_stream"]).len(), 1);
    }
}
