//! Connecting as the URL says: verified certificates, Unix sockets, the URL's own options, unusable
//! URLs as configuration errors.

use super::*;

#[tokio::test]
async fn server_certificates_are_verified_and_unix_sockets_connect() {
    // GIVEN a server of our own with a certificate for `localhost` from a throwaway CA
    let pki = Pki::new();
    let other = Pki::new();
    let server = OwnServer::start(&pki);
    let dir = server.dir.clone();
    for (name, text) in [
        ("ca.pem", &pki.ca),
        ("other-ca.pem", &other.ca),
        ("client.pem", &pki.client.0),
        ("client.key", &pki.client.1),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let port = server.port;
    let ca = dir.join("ca.pem").display().to_string();
    let other_ca = dir.join("other-ca.pem").display().to_string();
    // `hostaddr` pins the address (the server listens on IPv4 only) while `host` stays the
    // name the certificate is checked against, as with libpq.
    let url = |host: &str, user: &str, params: &str| {
        format!("postgres://{user}@{host}:{port}/postgres?hostaddr=127.0.0.1&{params}")
    };

    // THEN verify-full connects, encrypted, to the name the certificate gives
    let full = url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    assert_eq!(ocapi_connect(&full).await, Ok(true));
    // AND refuses another name for the same server, which verify-ca accepts
    let by_ip = url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let refused = ocapi_connect(&by_ip).await.unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
    let ca_only = url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    assert_eq!(ocapi_connect(&ca_only).await, Ok(true));
    // AND refuses a certificate from a CA it was not given, in both modes
    for mode in ["verify-full", "verify-ca"] {
        let wrong = url(
            "localhost",
            "postgres",
            &format!("sslmode={mode}&sslrootcert={other_ca}"),
        );
        let refused = ocapi_connect(&wrong).await.unwrap_err();
        assert!(refused.contains("certificate"), "{refused}");
    }
    // AND presents a client certificate (sslcert/sslkey) to a role that needs one
    let client_cert = format!(
        "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
        dir.join("client.pem").display(),
        dir.join("client.key").display()
    );
    let admin = crate::support::connect(&url("127.0.0.1", "postgres", "sslmode=disable")).await;
    admin
        .batch_execute("create role certonly login")
        .await
        .unwrap();
    assert_eq!(
        ocapi_connect(&url("localhost", "certonly", &client_cert)).await,
        Ok(true)
    );
    let no_cert = url(
        "localhost",
        "certonly",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    assert!(ocapi_connect(&no_cert).await.is_err());

    // AND a Unix socket connects as psql does, in both URL forms, whatever the sslmode
    let socket = dir.display().to_string();
    let query_form = format!("postgres:///postgres?host={socket}&port={port}&user=postgres");
    assert_eq!(ocapi_connect(&query_form).await, Ok(false));
    let encoded = socket.replace('/', "%2F");
    let host_form = format!("postgres://postgres@{encoded}:{port}/postgres?sslmode=disable");
    assert_eq!(ocapi_connect(&host_form).await, Ok(false));
    let required = format!("postgres://postgres@{encoded}:{port}/postgres?sslmode=require");
    assert_eq!(ocapi_connect(&required).await, Ok(false));

    // AND a whole sync runs over the verified connection
    admin
        .batch_execute(crate::support::SOURCE_TABLE)
        .await
        .unwrap();
    admin
        .batch_execute(
            "insert into shop.store_transactions (order_id, purchased_at, updated_at, total,
                 currency, email)
             values ('V1', now() - interval '1 hour', '2026-11-01 10:00:00+00', 12, 'USD',
                 'v@example.com')",
        )
        .await
        .unwrap();
    let out = dir.join("events.ndjson");
    let text = crate::support::config_text(&full, &out, "", None);
    let config = Config::parse(&text, Path::new("tls.toml")).unwrap();
    migrate(&config).await;
    assert_eq!(crate::support::run(&config).await.sent, 1);
    assert_eq!(crate::support::read_ndjson(&out).len(), 1);
}

#[tokio::test]
async fn the_urls_own_options_are_kept() {
    // GIVEN a `sales` schema holding a table of the same name as one in `public`, and a URL
    // whose options put `sales` first and set a statement timeout
    let db = TestDb::new().await;
    db.exec(
        "create schema sales;
         create table sales.store_transactions (like shop.store_transactions);
         create table public.store_transactions (like shop.store_transactions);
         insert into sales.store_transactions (order_id, purchased_at, updated_at, total,
             currency, email)
         values ('S1', now() - interval '1 hour', '2026-11-01 10:00:00+00', 5, 'USD', 's@example.com');",
    )
    .await;
    let url = format!(
        "{}?options=-c%20search_path%3Dsales%2Cpublic%20-c%20statement_timeout%3D42s",
        db.url
    );
    let text = crate::support::config_text(&url, &db.out_path(), "", None).replace(
        "table = \"shop.store_transactions\"",
        "table = \"store_transactions\"",
    );
    let config = Config::parse(&text, Path::new("options.toml")).unwrap();

    // WHEN the ledger is migrated and a run reads `store_transactions`
    migrate(&config).await;
    let stats = crate::support::run(&config).await;

    // THEN it read the schema the URL names, and sessions keep the URL's settings
    assert_eq!(stats.sent, 1);
    assert_eq!(db.written_events()[0]["custom_data"]["order_id"], "S1");
    for what in ["source", "ledger"] {
        let pool = ocapi::db::pool(&ocapi::secret::Secret::new(url.clone()), what, 1).unwrap();
        let client = ocapi::db::connect(&pool, what).await.unwrap();
        let row = client
            .query_one(
                "select current_setting('statement_timeout'), current_schema()",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            (row.get::<_, String>(0), row.get::<_, String>(1)),
            ("42s".to_owned(), "sales".to_owned())
        );
    }
}

#[tokio::test]
async fn an_unusable_url_is_a_configuration_error_and_watch_stops() {
    // GIVEN a URL with a password and a parameter that cannot work (a missing root certificate)
    let db = TestDb::new().await;
    let url = db.url.replacen("postgres@", "postgres:pa55-w0rd-x@", 1)
        + "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
    let text = crate::support::config_text(&url, &db.out_path(), "", None);
    let path = db.dir.join("bad-url.toml");
    std::fs::write(&path, text).unwrap();

    // WHEN `run` and `watch` start with it
    for args in [vec!["run"], vec!["watch", "--interval", "1s"]] {
        let mut command = tokio::process::Command::from(crate::support::command(&path));
        command.args(&args);
        command.kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("watch stops instead of retrying")
            .unwrap();

        // THEN each exits 2 naming the key and the parameter, never the password
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("`source.url`") && stderr.contains("sslrootcert"),
            "{stderr}"
        );
        assert!(!stderr.contains("pa55-w0rd-x"), "{stderr}");
    }
    // AND verify-full without `sslrootcert` or `~/.postgresql/root.crt` says to give one
    let text = crate::support::config_text(
        &format!("{}?sslmode=verify-full", db.url),
        &db.out_path(),
        "",
        None,
    );
    std::fs::write(&path, text).unwrap();
    let output = crate::support::command(&path)
        .env("HOME", &db.dir)
        .arg("check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("add parameter `sslrootcert`"), "{stdout}");

    // AND an unknown parameter is named the same way
    let unknown = format!("{}?sslcrl=/etc/crl.pem", db.url);
    let error = ocapi::db::pool(&ocapi::secret::Secret::new(unknown), "ledger", 1).unwrap_err();
    assert!(
        matches!(&error, ocapi::db::DbError::Url { what: "ledger", reason } if reason.contains("sslcrl")),
        "{error:?}"
    );
    assert!(ocapi::Error::from(error).is_config());
}
