//! A real NATS JetStream cluster on loopback for tests and benchmarks:
//! three `nats-server` processes (Debian's package; `.ci/run` installs it)
//! with cluster routes, each with its own store directory. Shared by the
//! replicated log's tests (`tests/crash/replicated.rs`) and the commit
//! benchmark.
#![allow(dead_code)] // Each user needs a different part.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A free loopback port (the listener is closed again, so another process
/// could take it first: rare, and then the test fails loudly).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `nats-server` on the PATH, or where Debian's package puts it.
fn nats_server() -> PathBuf {
    let debian = PathBuf::from("/usr/sbin/nats-server");
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or(debian)
}

/// One `nats-server`, killed when dropped.
pub struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `nats-server` with the configuration file `config`.
pub fn single(config: &Path) -> Node {
    let log = std::fs::File::create(config.with_extension("log")).unwrap();
    let child = Command::new(nats_server())
        .arg("-c")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("nats-server must be installed (Debian package nats-server; .ci/run installs it)");
    Node(child)
}

/// Three `nats-server` processes forming one JetStream cluster.
pub struct Cluster {
    dir: PathBuf,
    clients: [u16; 3],
    routes: [u16; 3],
    nodes: [Option<Child>; 3],
}

impl Cluster {
    /// Starts the three nodes, storing under `dir`.
    pub fn start(dir: &Path) -> Cluster {
        let mut cluster = Cluster {
            dir: dir.to_owned(),
            clients: [free_port(), free_port(), free_port()],
            routes: [free_port(), free_port(), free_port()],
            nodes: [None, None, None],
        };
        for node in 0..3 {
            cluster.start_node(node);
        }
        cluster
    }

    /// Starts node `node` (0, 1 or 2) again.
    pub fn start_node(&mut self, node: usize) {
        let routes: Vec<String> = self.routes.iter().map(|port| format!("nats-route://127.0.0.1:{port}")).collect();
        let config = format!(
            "server_name: n{node}\nlisten: 127.0.0.1:{client}\nmax_payload: 8MB\n\
             jetstream {{ store_dir: {store:?} }}\n\
             cluster {{ name: province\n listen: 127.0.0.1:{route}\n routes: [{routes}] }}\n",
            client = self.clients[node],
            store = self.dir.join(format!("n{node}")).display().to_string(),
            route = self.routes[node],
            routes = routes.join(", "),
        );
        let path = self.dir.join(format!("n{node}.conf"));
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("n{node}.log"))).unwrap();
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server must be installed (Debian package nats-server; .ci/run installs it)");
        self.nodes[node] = Some(child);
    }

    /// Kills node `node` with SIGKILL.
    pub fn kill_node(&mut self, node: usize) {
        let mut child = self.nodes[node].take().expect("node running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Every node's client address, as `musterd --log` takes them.
    pub fn url(&self) -> String {
        self.clients.iter().map(|port| format!("nats://127.0.0.1:{port}")).collect::<Vec<_>>().join(",")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
