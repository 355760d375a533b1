//! A running `ocapi watch --listen` for the tests that talk to it (`/metrics`, `/healthz`,
//! `/readyz`) and read what it logs: the process, its stderr lines, and the address it said it
//! listens on (`--listen 127.0.0.1:0` picks a free port, and watch logs it in JSON).
//!
//! Topic-specific queries (`/metrics` series, waiting for runs) are `impl Watch` blocks in the
//! modules that use them.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits for `child` at most `limit` (killing it past that, and failing).
pub async fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{what} still running after {}s; stderr:\n{}",
                    limit.as_secs(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap()
}

/// A running `ocapi --log-format json … watch --listen …` and its logs; killed when dropped.
pub struct Watch {
    /// The process (`None` once stopped).
    child: Option<Child>,
    /// Its stderr lines.
    lines: Arc<Mutex<Vec<String>>>,
    /// Where `--listen` serves.
    pub addr: SocketAddr,
}

impl Watch {
    /// `ocapi --config CONFIG --log-format json watch --listen 127.0.0.1:0 ARGS`.
    pub fn command(config: &Path, args: &[&str]) -> Command {
        let mut command = super::command(config);
        command
            .args(["--log-format", "json", "watch", "--listen", "127.0.0.1:0"])
            .args(args);
        command
    }

    /// Starts `command` (an `ocapi --log-format json … watch --listen …`, possibly wrapped, as
    /// under `sh -c`) with `OCAPI_LOG=info`, and waits (at most 60 s) for the address it logs.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .env("OCAPI_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(addr) = json["fields"]["address"].as_str() {
                        let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "watch never said where it listens:\n{}",
                    lines.lock().unwrap().join("\n")
                )
            });
        Self {
            child: Some(child),
            lines,
            addr,
        }
    }

    /// GET a path; the status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// The logs so far.
    pub fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// SIGTERM, then its exit code, waiting at most `limit`.
    pub async fn stop(mut self, limit: Duration) -> Option<i32> {
        let child = self.child.take().unwrap();
        super::send_signal(&child, "TERM");
        wait_bounded(child, limit, "watch after SIGTERM")
            .await
            .status
            .code()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
