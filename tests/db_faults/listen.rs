//! `/readyz` floods and `--listen` limits (issue 23 kinds 3 and 4).

use super::*;

#[tokio::test]
async fn readyz_floods_cost_the_database_a_few_connections_and_the_runs_go_on() {
    // GIVEN a watch every second with a completed run
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    let watch = Watch::start(Watch::command(&db.config_path(), &["--interval", "1s"]));
    watch.wait_runs("completed", 1.0).await;

    // WHEN 300 probes of /readyz arrive at once, while the connections are counted
    let counting = Arc::new(AtomicBool::new(true));
    let most = Arc::new(Mutex::new(0i64));
    let sampler = {
        let (counting, most) = (Arc::clone(&counting), Arc::clone(&most));
        let client = crate::support::connect(&db.url).await;
        let name = db.name.clone();
        tokio::spawn(async move {
            while counting.load(Ordering::SeqCst) {
                let n: i64 = client
                    .query_one(
                        "select count(*) from pg_stat_activity where datname = $1 \
                         and application_name = 'ocapi'",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .get(0);
                {
                    let mut most = most.lock().unwrap();
                    *most = (*most).max(n);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let probes: Vec<_> = (0..300)
        .map(|_| tokio::spawn(http_get(watch.addr, "/readyz")))
        .collect();
    let mut answers = Vec::new();
    for probe in probes {
        answers.push(probe.await.unwrap());
    }
    counting.store(false, Ordering::SeqCst);
    sampler.await.unwrap();

    // THEN every probe is answered ready, and ocapi never held more than a few connections
    let ready = answers
        .iter()
        .filter(|a| matches!(a, Some((200, body)) if body == "ok\n"))
        .count();
    assert_eq!(
        ready,
        300,
        "{:?}",
        answers.iter().find(|a| !matches!(a, Some((200, _))))
    );
    let most = *most.lock().unwrap();
    eprintln!("300 concurrent /readyz: ocapi held at most {most} connections");
    assert!(most <= 12, "ocapi held {most} connections at once");

    // AND the watch's runs go on
    insert_orders(&db, "S", 5, "2026-01-02T00:00:00Z").await;
    eventually(
        "the new orders written",
        Duration::from_secs(60),
        || async { db.written_events().len() == 10 },
    )
    .await;
    assert!(ocapi_connections(&db).await <= 12);
}

#[tokio::test]
async fn listen_outlasts_more_idle_connections_than_its_limit() {
    // GIVEN a watch serving --listen with at most 64 connections, each given 1 s to ask
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    let watch = Watch::start(Watch::command(
        &db.config_path(),
        &[
            "--interval",
            "1h",
            "--listen-max-connections",
            "64",
            "--listen-timeout",
            "1s",
        ],
    ));
    watch.wait_runs("completed", 1.0).await;

    // WHEN 200 connections are opened and send nothing
    let idle = idle_connections(watch.addr, 200).await;

    // THEN /healthz and /metrics still answer, and the idle connections are closed
    assert_eq!(
        http_get(watch.addr, "/healthz").await,
        Some((200, "ok\n".to_owned()))
    );
    let metrics = http_get(watch.addr, "/metrics").await;
    assert!(
        matches!(&metrics, Some((200, text)) if text.contains("ocapi_runs_total")),
        "{metrics:?}"
    );
    closed_by_server(idle).await;
    assert_eq!(
        http_get(watch.addr, "/healthz").await.map(|a| a.0),
        Some(200)
    );
}

#[tokio::test]
async fn listen_outlasts_running_out_of_file_descriptors() {
    // GIVEN a watch limited to 64 descriptors whose --listen allows more connections than that
    let db = TestDb::new().await;
    insert_orders(&db, "R", 5, "2026-01-01T00:00:00Z").await;
    let config = db.config("", None);
    migrate(&config).await;
    let inner = Watch::command(
        &db.config_path(),
        &[
            "--interval",
            "1h",
            "--listen-max-connections",
            "500",
            "--listen-timeout",
            "1s",
        ],
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let watch = Watch::start(command);
    watch.wait_runs("completed", 1.0).await;

    // WHEN 150 connections are opened and send nothing (more than it has descriptors)
    let idle = idle_connections(watch.addr, 150).await;

    // THEN once they are closed, it answers again: it never stopped accepting
    closed_by_server(idle).await;
    assert_eq!(
        http_get(watch.addr, "/healthz").await,
        Some((200, "ok\n".to_owned()))
    );
    assert!(watch.logs().contains("cannot accept"), "{}", watch.logs());
}
