//! The new-user trial's findings (docs/operations.md walks the same first sync): each test
//! fails on the build the trial used and passes after its fix.

use std::process::Command;

/// Trial finding 9: `ocapi sandbox --listen ADDR` on a port already taken names the address
/// and the flag, and exits 2 (README's exit table: a bad flag), not "cannot write output".
#[test]
fn sandbox_on_a_taken_port_says_it_cannot_listen_there() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ocapi"))
        .args(["sandbox", "--listen", &addr])
        .env_remove("OCAPI_CONFIG")
        .env("OCAPI_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot write output"), "{stderr}");
    drop(taken);
}
