//! docker/ (issue #17): no Docker engine runs where the tests do, so the Dockerfile and the
//! compose file are parsed and checked, and the container's command line is run directly: the
//! compose connector's `watch --listen`, probed by the image's own HEALTHCHECK command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser as _;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::watch::Watch;
use crate::support::{sandbox, TestDb, TOKEN};
use ocapi::cli::{Cli, Command as OcapiCommand};
use ocapi::sandbox::Faults;

/// A file under docker/.
fn docker_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docker")
        .join(name)
}

/// The Dockerfile's instructions: `(INSTRUCTION, arguments)`, continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(docker_file("Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (instruction, args) = current.split_once(' ').unwrap();
        out.push((instruction.to_owned(), args.trim().to_owned()));
        current.clear();
    }
    assert!(
        current.is_empty(),
        "a continuation line ends the Dockerfile"
    );
    out
}

/// The JSON array of an exec-form instruction.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not an exec-form array: {args} ({e})"))
}

/// The HEALTHCHECK's command, with its options.
fn healthcheck() -> (String, Vec<String>) {
    let (_, args) = dockerfile()
        .into_iter()
        .find(|(i, _)| i == "HEALTHCHECK")
        .expect("the Dockerfile has a HEALTHCHECK");
    let (options, command) = args.split_once("CMD ").unwrap();
    (options.to_owned(), exec_form(command))
}

#[test]
fn the_dockerfile_builds_in_a_stage_and_runs_ocapi_watch_listen_as_non_root_with_a_healthcheck() {
    // GIVEN the Dockerfile; WHEN it is parsed
    let instructions = dockerfile();

    // THEN every instruction is one Docker knows
    const KNOWN: [&str; 18] = [
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
        "MAINTAINER",
    ];
    for (instruction, _) in &instructions {
        assert!(KNOWN.contains(&instruction.as_str()), "{instruction}");
    }
    // AND the binary is built in a build stage and copied from it into the runtime stage
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(stages.len(), 2);
    assert!(instructions[stages[0]].1.ends_with(" AS builder"));
    let runtime = &instructions[stages[1]..];
    assert!(runtime
        .iter()
        .any(|(i, a)| i == "COPY" && a.starts_with("--from=builder ")));
    assert!(!runtime
        .iter()
        .any(|(i, a)| i == "RUN" && a.contains("cargo")));
    // AND it runs as a non-root user
    let user = runtime.iter().rev().find(|(i, _)| i == "USER").unwrap();
    let uid = user.1.split(':').next().unwrap();
    assert!(uid != "0" && uid != "root", "{user:?}");
    // AND its default command line is `ocapi watch --listen ...`, valid for ocapi's CLI
    let entrypoint = exec_form(&runtime.iter().find(|(i, _)| i == "ENTRYPOINT").unwrap().1);
    let cmd = exec_form(&runtime.iter().find(|(i, _)| i == "CMD").unwrap().1);
    let cli = Cli::try_parse_from(entrypoint.iter().chain(&cmd)).unwrap();
    let OcapiCommand::Watch(watch) = cli.command else {
        panic!("the default command is not watch: {cmd:?}");
    };
    let listen = watch.listen.expect("the default command listens");
    // AND the HEALTHCHECK probes /healthz on that port, with what the runtime image has
    let (options, probe) = healthcheck();
    assert!(options.contains("--interval="), "{options}");
    assert_eq!(probe[0], "bash");
    assert!(probe[2].contains(&format!("/dev/tcp/127.0.0.1/{}", listen.port())));
    assert!(probe[2].contains("GET /healthz"));
    let exposed = runtime.iter().find(|(i, _)| i == "EXPOSE").unwrap();
    assert_eq!(exposed.1, listen.port().to_string());
}

/// The compose file, parsed.
fn compose() -> Yaml {
    let text = std::fs::read_to_string(docker_file("compose.yaml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// A service's `command` as strings.
fn command(service: &Yaml) -> Vec<String> {
    service["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_compose_file_parses_and_runs_postgres_the_stand_in_and_watch_listen() {
    // GIVEN docker/compose.yaml; WHEN it is parsed
    let compose = compose();
    let services = &compose["services"];

    // THEN it has PostgreSQL, the stand-in, the migration and the connector
    assert!(services["postgres"]["image"]
        .as_str()
        .unwrap()
        .starts_with("postgres:"));
    for name in ["sandbox", "migrate", "connector"] {
        // (each merges the x-ocapi anchor: the image built from docker/Dockerfile)
        let service = &services[name];
        assert_eq!(
            service["<<"]["image"].as_str(),
            Some("ocapi:local"),
            "{name}"
        );
        assert_eq!(
            service["<<"]["build"]["dockerfile"].as_str(),
            Some("docker/Dockerfile")
        );
        // AND each command is a valid ocapi command line
        let args = command(service);
        Cli::try_parse_from(std::iter::once("ocapi".to_owned()).chain(args.clone()))
            .unwrap_or_else(|e| panic!("{name}: {args:?}: {e}"));
    }
    assert_eq!(command(&services["sandbox"])[0], "sandbox");
    // AND the connector is `watch --listen`, its port published, after the migration
    let connector = &services["connector"];
    let args = command(connector);
    let Ok(Cli {
        command: OcapiCommand::Watch(watch),
        ..
    }) = Cli::try_parse_from(std::iter::once("ocapi".to_owned()).chain(args))
    else {
        panic!("the connector does not run watch");
    };
    let port = watch.listen.unwrap().port();
    assert_eq!(
        connector["ports"][0].as_str(),
        Some(format!("127.0.0.1:{port}:{port}").as_str())
    );
    assert_eq!(
        connector["depends_on"]["migrate"]["condition"].as_str(),
        Some("service_completed_successfully")
    );
    // AND containers that do not listen turn the image's HEALTHCHECK off
    for name in ["sandbox", "migrate"] {
        assert_eq!(
            services[name]["healthcheck"]["disable"].as_bool(),
            Some(true)
        );
    }
}

#[tokio::test]
async fn the_connector_containers_command_line_works_when_run_directly() {
    // GIVEN the compose file's demo data and connector config, pointed at this machine's
    // PostgreSQL and stand-in instead of the compose network's
    let db = TestDb::new().await;
    db.exec(&std::fs::read_to_string(docker_file("demo-data.sql")).unwrap())
        .await;
    let graph = sandbox(Faults::default()).await;
    let config = std::fs::read_to_string(docker_file("connector.toml"))
        .unwrap()
        .replace("http://sandbox:4599", &graph.base_url());
    let config_path = db.dir.join("docker-connector.toml");
    std::fs::write(&config_path, config).unwrap();
    let env = [
        ("OCAPI_SOURCE_URL", db.url.as_str()),
        ("OCAPI_META_TOKEN", TOKEN),
    ];
    let migrate = crate::support::command(&config_path)
        .arg("migrate")
        .envs(env)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    // WHEN the connector's command line runs (on a free port instead of the published one)
    let mut args = command(&compose()["services"]["connector"]);
    let listen = args.iter().position(|a| a == "--listen").unwrap() + 1;
    let published: std::net::SocketAddr = args[listen].parse().unwrap();
    args[listen] = "127.0.0.1:0".to_owned();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut watch_command = crate::support::command(&config_path);
    watch_command
        .args(["--log-format", "json"])
        .args(&args)
        .envs(env);
    let watch = Watch::start(watch_command);

    // THEN it sends the demo orders and gets ready
    let deadline = Instant::now() + Duration::from_secs(60);
    while watch.get("/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready:\n{}", watch.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(graph.stats().events_accepted > 0);
    // AND the image's HEALTHCHECK command, aimed at its port, passes (and fails on a closed one)
    // (the probe talks to another process: blocking this thread holds nothing up)
    let probe = |port: u16| {
        let (_, probe) = healthcheck();
        let script = probe[2].replace(
            &format!("/dev/tcp/127.0.0.1/{}", published.port()),
            &format!("/dev/tcp/127.0.0.1/{port}"),
        );
        Command::new(&probe[0])
            .arg(&probe[1])
            .arg(script)
            .status()
            .unwrap()
    };
    assert!(probe(watch.addr.port()).success());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(!probe(closed_port).success());
    assert_eq!(watch.stop(Duration::from_secs(90)).await, Some(0));
}
