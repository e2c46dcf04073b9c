//! A throwaway PostgreSQL server for tests: Debian's `postgresql` package (`initdb` + `pg_ctl`
//! from `/usr/lib/postgresql/<version>/bin`), a data directory in a temporary folder, trust
//! authentication, listening on 127.0.0.1 on a free port; stopped and removed on drop. As root
//! (CI), the server runs as the `postgres` user through `runuser` (PostgreSQL refuses root).
//!
//! `GEVENT_TEST_PG` (a libpq connection string) uses an existing server instead.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct PgServer {
    /// A libpq-style connection string for tokio-postgres / postgres.
    pub conn: String,
    dir: Option<PathBuf>,
    bin: PathBuf,
    as_postgres: bool,
}

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run(as_postgres: bool, prog: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(prog);
        c
    } else {
        Command::new(prog)
    };
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", prog.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {args:?} failed: {}{}",
            prog.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PgServer {
    /// Starts a server, or says why it cannot (the caller prints it and skips).
    pub fn start() -> Result<PgServer, String> {
        if let Ok(conn) = std::env::var("GEVENT_TEST_PG") {
            return Ok(PgServer {
                conn,
                dir: None,
                bin: PathBuf::new(),
                as_postgres: false,
            });
        }
        let bin = bin_dir().ok_or(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; \
             `apt-get install -y postgresql`)",
        )?;
        let as_postgres = is_root();
        let base = std::env::temp_dir().join(format!(
            "gevent-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
        let mut server = PgServer {
            conn: String::new(),
            dir: Some(base.clone()),
            bin: bin.clone(),
            as_postgres,
        };
        if as_postgres {
            let st = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&base)
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("cannot chown the data folder to postgres".into());
            }
        }
        let data = base.join("data");
        let data_s = data.to_str().unwrap();
        run(
            as_postgres,
            &bin.join("initdb"),
            &["-D", data_s, "-A", "trust", "-U", "postgres", "--no-sync"],
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=250 -c fsync=off",
            base.display()
        );
        let log = base.join("log");
        run(
            as_postgres,
            &bin.join("pg_ctl"),
            &[
                "-D",
                data_s,
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })?;
        server.conn = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
        Ok(server)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let data = dir.join("data");
            let _ = run(
                self.as_postgres,
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
