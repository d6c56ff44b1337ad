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

    /// The lines of `text` that use one of `crates` as a path.
    fn uses(text: &str, crates: &[&str]) -> Vec<String> {
        code(text)
            .lines()
            .filter(|line| {
                crates.iter().any(|name| {
                    line.match_indices(name).any(|(at, _)| {
                        let before = line[..at].chars().last();
                        let after = &line[at + name.len()..];
                        before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) && after.starts_with("::")
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
            "the domain knows nothing of transport or storage",
            |path| !path.starts_with("domain/"),
            &["tokio", "tonic", "sled", "prost", "muster_proto"],
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
    }
}
