//! PostgreSQL for the queue's tests: Debian's package, on a loopback port.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A PostgreSQL server of Debian's `postgresql` package, started in a temporary folder on a
/// loopback port (as the `postgres` user when the tests run as root), stopped when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("PostgreSQL's initdb (Debian package postgresql; scripts/install-deps.sh installs it)");
        let dir = tempfile::tempdir().unwrap();
        let root = unsafe_is_root();
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let run = |tool: &str, args: &[&str]| {
            let mut cmd = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
                c
            } else {
                Command::new(bin.join(tool))
            };
            let out = cmd.args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let data_s = data.to_string_lossy().into_owned();
        run(
            "initdb",
            &["-D", &data_s, "-U", "mosaic", "-A", "trust", "--no-sync"],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            dir.path().display()
        );
        let log = dir.path().join("log").to_string_lossy().into_owned();
        run(
            "pg_ctl",
            &["-D", &data_s, "-l", &log, "-o", &opts, "-w", "start"],
        );
        Postgres { dir, bin, port }
    }

    pub fn url(&self) -> String {
        format!("postgres://mosaic@127.0.0.1:{}/postgres", self.port)
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut cmd = if unsafe_is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = cmd
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
