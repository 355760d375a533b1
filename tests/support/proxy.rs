//! One TCP proxy in front of the test's PostgreSQL, for the network faults of the database
//! tests: it forwards until told otherwise, and can
//! - **stall** ([`PgProxy::stall`]): open connections forward nothing more (what either side
//!   sends is read and dropped, so both stay open, as behind a hung pooler or a half-dead
//!   network) and new ones are accepted and never answered; [`PgProxy::heal`] makes new
//!   connections forward again, while a connection that saw the stall stays dead;
//! - **stop** ([`PgProxy::stop`]): connections are refused and open ones cut, until
//!   [`PgProxy::restart`] listens again on the same port.
//!
//! Either side closing closes the other (so a killed client's session ends).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::admin_url;

/// A proxy to the test server; see the module's documentation.
pub struct PgProxy {
    /// Its address.
    pub addr: SocketAddr,
    /// PostgreSQL's.
    upstream: SocketAddr,
    /// Whether it stalls now.
    stalled: Arc<AtomicBool>,
    /// The accept loop and the connections, aborted by [`PgProxy::stop`].
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl PgProxy {
    /// A forwarding proxy to the test server.
    pub async fn start() -> Self {
        let config: tokio_postgres::Config = admin_url().parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            tokio_postgres::config::Host::Unix(_) => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .unwrap()
            .next()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            stalled: Arc::new(AtomicBool::new(false)),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    /// Accepts and forwards connections on `listener`.
    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let tasks = Arc::clone(&self.tasks);
        let flag = Arc::clone(&self.stalled);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let flag = Arc::clone(&flag);
                let task = tokio::spawn(async move {
                    let (from_client, to_client) = inbound.into_split();
                    if flag.load(Ordering::SeqCst) {
                        // Accepted, never answered: read until the client gives up.
                        drain(from_client).await;
                        drop(to_client);
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (from_server, to_server) = outbound.into_split();
                    let dead = Arc::new(AtomicBool::new(false));
                    tokio::join!(
                        pipe(from_client, to_server, Arc::clone(&flag), Arc::clone(&dead)),
                        pipe(from_server, to_client, flag, dead),
                    );
                });
                tasks.lock().unwrap().push(task);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Stops forwarding, on open connections and new ones.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards new connections again.
    pub fn heal(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// Refuses connections and cuts the open ones.
    pub async fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        // The listener is dropped with its task; let the runtime get there.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(self.addr).await.is_err());
    }

    /// Accepts connections again, on the same port.
    pub async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// A URL for `database` through the proxy.
    pub fn url(&self, database: &str) -> String {
        self.url_with(database, "")
    }

    /// A URL for `database` through the proxy, with `query` (`?…`) appended.
    pub fn url_with(&self, database: &str, query: &str) -> String {
        let config: tokio_postgres::Config = admin_url().parse().unwrap();
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        format!(
            "postgres://{user}{password}@{}/{database}{query}",
            self.addr
        )
    }
}

/// Reads and drops until the end.
async fn drain(mut from: OwnedReadHalf) {
    let mut buf = vec![0u8; 16 * 1024];
    while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Copies `from` to `to` until either ends; drops what arrives once the proxy stalls (and
/// from then on, for this connection); closes `to` at the end.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
    dead: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if stalled.load(Ordering::SeqCst) {
            dead.store(true, Ordering::SeqCst);
        }
        if dead.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
