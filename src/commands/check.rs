//! `ocapi check`: validates the config against the source (table, columns, types, indexes,
//! rows a run would never read or would hold back), the ledger schema and the destination,
//! without sending anything.

use std::fmt::Write as _;

use tokio_postgres::types::Type;

use crate::config::Config;
use crate::db;
use crate::destination::Destination;
use crate::error::{Error, ExitStatus};
use crate::source;

/// What `check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// A line per thing checked.
    pub text: String,
    /// Whether everything is ready for a run.
    pub ok: bool,
    /// The exit status: success, or that of the first failure (configuration problems 2,
    /// failures to connect 1).
    pub status: ExitStatus,
}

impl CheckReport {
    /// Adds a passed check.
    fn pass(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(
            self.text,
            "ok    {}",
            crate::escape::terminal(line.as_ref())
        );
    }

    /// Adds a warning: something that works but should be fixed; the exit code is unchanged.
    fn warn(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(
            self.text,
            "warn  {}",
            crate::escape::terminal(line.as_ref())
        );
    }

    /// Adds a finding about Meta's side: `ok`, `warn`, or a failure with exit 2 (a dead token,
    /// a version past its end).
    fn finding(&mut self, finding: &crate::destination::meta::token::Finding) {
        use crate::destination::meta::token::Severity;
        let label = match finding.severity {
            Severity::Ok => "ok   ",
            Severity::Warn => "warn ",
            Severity::Fail => "FAIL ",
        };
        let _ = writeln!(
            self.text,
            "{label} {}",
            crate::escape::terminal(&finding.text)
        );
        if finding.severity == Severity::Fail {
            if self.ok {
                self.status = ExitStatus::Config;
            }
            self.ok = false;
        }
    }

    /// Adds a failed check; the first failure decides the exit code.
    fn fail(&mut self, error: &Error) {
        let chain = crate::error::chain(error);
        let _ = writeln!(self.text, "FAIL  {}", crate::escape::terminal(&chain));
        if self.ok {
            self.status = error.exit_status();
        }
        self.ok = false;
    }
}

/// `ocapi check`: prints a line per check; exits with the first failure's status.
pub(crate) async fn command(config: &Config) -> Result<ExitStatus, Error> {
    let report = check(config).await;
    print!("{}", report.text);
    Ok(report.status)
}

/// Validates the config against the source, the ledger and the destination.
pub async fn check(config: &Config) -> CheckReport {
    let mut report = CheckReport {
        ok: true,
        ..CheckReport::default()
    };
    report.pass(format!("config: connector {:?}", config.connector.name));
    match crate::alerts::Alerter::from_config(&config.alerts) {
        Ok(Some(_)) => report.pass(format!(
            "alerts: webhook set (quiet period {})",
            crate::human::std_duration(config.alerts.quiet_period)
        )),
        Ok(None) => {}
        Err(error) => report.fail(&error.into()),
    }
    if let Err(error) = check_source(config, &mut report).await {
        report.fail(&error);
    }
    match check_ledger(config).await {
        Ok(line) => report.pass(line),
        Err(error) => report.fail(&error),
    }
    let destination = Destination::from_config(config).map_err(Error::from);
    // Meta's side first: a dead token fails with exit 2 and its date before the dataset's
    // refusal of it.
    if let Ok(Destination::Meta(meta)) = &destination {
        for finding in super::meta_side::life(config, meta).await {
            report.finding(&finding);
        }
    }
    let mut reached = false;
    match &destination {
        Ok(destination) => match destination.check().await {
            Ok(line) => {
                reached = true;
                report.pass(line);
            }
            Err(error) => report.fail(&error.into()),
        },
        Err(error) => report.fail(error),
    }
    // Meta's diagnostics only when the dataset answered: a refusal or an unreachable endpoint
    // is said once, on the dataset's FAIL line.
    if let (true, Ok(Destination::Meta(meta))) = (reached, &destination) {
        let findings = super::meta_side::diagnostics(meta).await;
        for finding in findings
            .iter()
            .chain(&super::meta_side::version_headers(meta))
        {
            report.finding(finding);
        }
    }
    let secret_files = [
        (
            "destination.access_token_file",
            config.destination.access_token_file.as_ref(),
        ),
        (
            "alerts.webhook_url_file",
            config.alerts.webhook_url_file.as_ref(),
        ),
    ];
    for (key, path) in secret_files {
        if let Some(warning) = path.and_then(|path| crate::secret::exposure(key, path)) {
            report.warn(warning);
        }
    }
    report
}

/// Connects to the source and checks the table, every mapped column and its type, the indexes
/// a run's read uses, and the rows a run would never read or would hold back.
async fn check_source(config: &Config, report: &mut CheckReport) -> Result<(), Error> {
    let pool =
        db::pool(&config.source_url()?, "source", 1)?.with_timeouts(db::Timeouts::source(config));
    let client = db::connect(&pool, "source").await?;
    let table = pool
        .within(
            "describing the source table",
            source::describe(&client, config),
        )
        .await?;
    let watermark = match &config.source.watermark_column {
        Some(column) => format!(
            "watermark {column:?} as {}",
            table.watermark_kind.sql_type()
        ),
        None => "changes found by [[source.changes]]".to_owned(),
    };
    report.pass(format!(
        "source: {} ({watermark}, event time {:?})",
        table.quoted_name, config.mapping.event_time
    ));
    let columns: Vec<String> = config
        .mapping
        .columns()
        .iter()
        .map(|(key, column)| format!("{key}={column}:{}", table.columns[*column].declared))
        .collect();
    report.pass(format!("mapping: {}", columns.join(", ")));
    if table.event_time_kind == source::EventTimeKind::Local {
        let per_row = config
            .mapping
            .timezone
            .as_deref()
            .map(|c| format!("each row's {c:?}, else "))
            .unwrap_or_default();
        report.pass(format!(
            "event times are local times, read in {per_row}{} (`source.timezone`)",
            config.source.timezone
        ));
    }
    let warn = |report: &mut CheckReport, text: String| {
        let _ = writeln!(report.text, "warn  {text}");
    };
    if table.watermark_kind == source::WatermarkKind::Timestamp
        && has_dst(config.source.timezone.tz())
        && config.source.lookback.duration() < std::time::Duration::from_secs(3600)
    {
        warn(
            report,
            format!(
                "the watermark is a timestamp without time zone in {}, which has daylight \
                 saving: it goes back an hour each autumn; set `source.lookback` to at least \
                 \"1h\" (or use a timestamptz column)",
                config.source.timezone
            ),
        );
    }
    if config.source.lookback.is_zero() {
        warn(
            report,
            "`source.lookback` is 0: a row committed after a later-stamped one (two tills \
             writing at once, a long transaction) is never read by `run`; set it to how late \
             your source commits, for example \"15m\" (on an integer watermark, a number in \
             the column's own units, such as 5000)"
                .to_owned(),
        );
    }
    if let (Some(start), Some(_)) = (&config.source.start, &config.source.watermark_column) {
        // A `source.start` that does not fit fails `run` (exit 2): so it fails here.
        source::check_watermark(&client, table.watermark_kind, start, "the watermark column")
            .await?;
    }
    if let Some(start) = &config.source.start {
        let t = table.watermark_kind.sql_type();
        let sql = format!("select $1::text::{t} > {}", now_in(table.watermark_kind));
        // Unnamed statements throughout: the source may be behind a transaction-mode pooler.
        let ahead = client
            .query_typed(&sql, &[(start, Type::TEXT)])
            .await
            .is_ok_and(|rows| {
                rows.first()
                    .is_some_and(|row| row.try_get::<_, bool>(0).unwrap_or(false))
            });
        if ahead {
            warn(
                report,
                format!(
                    "`source.start` {start:?} is ahead of the source database's clock: the \
                     first run reads nothing until then"
                ),
            );
        }
    }
    if table.watermark_kind == source::WatermarkKind::Integer && config.source.start.is_none() {
        warn(
            report,
            "the watermark is an integer and `source.start` is not set: a run without ledger \
             state reads the whole table and sends only the last 7 days (unless given \
             `--initial-sync`); set `source.start`"
                .to_owned(),
        );
    }
    for line in super::check_changes::lines(&client, config, &table).await? {
        match line {
            super::check_changes::Line::Pass(line) => report.pass(line),
            super::check_changes::Line::Warn(line) => warn(report, line),
        }
    }
    for line in super::check_behind::lines(&client, config, &table).await {
        warn(report, line);
    }
    if config.source.watermark_column.is_none() {
        return check_rest(&client, config, &table, report).await;
    }
    if table.watermark_kind == source::WatermarkKind::Integer {
        config
            .source
            .lookback
            .check(true, "source.lookback")
            .map_err(Error::from)?;
    }
    let query = source::ReadQuery::new(config, &table);
    let unsyncable = source::count(
        &client,
        &query.null_watermarks(),
        "cannot count rows without a watermark",
    )
    .await?;
    if unsyncable > 0 {
        warn(
            report,
            format!(
                "{unsyncable} rows have a NULL {:?} and are never read by `run`: give them a \
                 value, or send them with `ocapi backfill`",
                config.source.watermark_column()
            ),
        );
    }
    let ahead = source::count(&client, &query.ahead(), "cannot count rows ahead of now").await?;
    if ahead > 0 {
        warn(
            report,
            format!(
                "{ahead} rows have a {:?} ahead of the database's clock (plus {}): their orders \
                 are sent by event time, but the watermark never passes the clock and each run \
                 is degraded until they are fixed",
                config.source.watermark_column(),
                source::WATERMARK_SKEW
            ),
        );
    }
    for line in index_advice(&client, config, &table).await? {
        match line {
            super::check_changes::Line::Pass(line) => report.pass(line),
            super::check_changes::Line::Warn(line) => warn(report, line),
        }
    }
    check_rest(&client, config, &table, report).await
}

/// The checks of the source that do not depend on its watermark column.
async fn check_rest(
    client: &tokio_postgres::Client,
    config: &Config,
    table: &source::SourceTable,
    report: &mut CheckReport,
) -> Result<(), Error> {
    let warn = |report: &mut CheckReport, text: String| {
        let _ = writeln!(report.text, "warn  {text}");
    };
    for finding in super::check_env::findings(client, config, table).await? {
        match finding {
            super::check_env::Finding::Pass(line) => report.pass(line),
            super::check_env::Finding::Warn(line) => warn(report, line),
        }
    }
    if let Some(line) = repeated_lines(client, config, table).await? {
        warn(report, line);
    }
    Ok(())
}

/// How many source rows `check` samples for orders whose lines repeat.
const LINE_SAMPLE: u32 = 10_000;

/// With line items and without `mapping.item_line`: the orders, in a sample of the source,
/// with a line that repeats exactly (same item, quantity and price), which a view joined with
/// something that has several rows per order gives, and which a run sums as so many lines.
async fn repeated_lines(
    client: &tokio_postgres::Client,
    config: &Config,
    table: &source::SourceTable,
) -> Result<Option<String>, Error> {
    let m = &config.mapping;
    let (Some(item), Some(quantity), Some(price)) = (&m.item_id, &m.item_quantity, &m.item_price)
    else {
        return Ok(None);
    };
    if m.item_line.is_some() {
        return Ok(None);
    }
    let text = |column: &str| format!("{}::text", db::quote_ident(column));
    let sql = format!(
        "select count(distinct k) from (
             select {id} as k from (select * from {table} limit {LINE_SAMPLE}) as s
             where {id} is not null
             group by 1, {item}, {quantity}, {price} having count(*) > 1
         ) as r",
        id = text(&m.order_id),
        table = table.quoted_name,
        item = text(item),
        quantity = text(quantity),
        price = text(price),
    );
    let orders = source::count(client, &sql, "cannot sample the source for repeated lines").await?;
    Ok((orders > 0).then(|| {
        format!(
            "{orders} orders in a sample of {LINE_SAMPLE} rows of {} repeat a line exactly (same \
             item, quantity and price): a view that joins the lines with something of several \
             rows per order (a customer's two emails) repeats them, and a run sums each repeat \
             as another line; set `mapping.item_line` to the line number or line id column",
            table.quoted_name
        )
    }))
}

/// The database's clock in a watermark's type (an integer watermark is compared with unix
/// seconds).
fn now_in(kind: source::WatermarkKind) -> &'static str {
    match kind {
        source::WatermarkKind::Integer => "extract(epoch from now())::bigint",
        source::WatermarkKind::Date => "current_date",
        source::WatermarkKind::Timestamp => "localtimestamp",
        source::WatermarkKind::Timestamptz => "now()",
    }
}

/// Whether an IANA zone has daylight-saving time (its offset differs between January and July).
fn has_dst(zone: chrono_tz::Tz) -> bool {
    use chrono::{Offset as _, TimeZone as _};
    let offset = |month| {
        zone.with_ymd_and_hms(2026, month, 1, 12, 0, 0)
            .single()
            .map(|t| t.offset().fix())
    };
    offset(1) != offset(7)
}

/// What the source needs for a run's read to cost per row read rather than per table row: an
/// index led by the watermark column (to find the delta) and one led by the order id column (to
/// gather every row of a changed order). For a table, from the catalog, each missing index a
/// line with its `create index`; for a view, from the planner's estimate of reading a small delta
/// against reading the whole view; for a foreign table, whose remote indexes are out of sight,
/// a line saying its server needs them.
async fn index_advice(
    client: &tokio_postgres::Client,
    config: &Config,
    table: &source::SourceTable,
) -> Result<Vec<super::check_changes::Line>, Error> {
    use super::check_changes::Line;
    let kind = client
        .query_typed(
            "select c.relkind::text from pg_class c where c.oid = to_regclass($1::text)",
            &[(&config.source.table, Type::TEXT)],
        )
        .await
        .map_err(db::DbError::query("cannot look up the source's kind"))?
        .first()
        .and_then(|row| row.try_get::<_, String>(0).ok())
        .unwrap_or_default();
    // With `[[source.changes]]` a run finds changes on each entry's own table (checked
    // entry by entry in `check_changes`), never by `source.watermark_column`.
    let changes = !config.source.changes.is_empty();
    let mut wanted = vec![("mapping.order_id", config.mapping.order_id.as_str())];
    if !changes {
        wanted.insert(
            0,
            ("source.watermark_column", config.source.watermark_column()),
        );
    }
    let mut advice = Vec::new();
    if kind == "r" || kind == "p" || kind == "m" {
        for (key, column) in wanted {
            let led: bool = client
                .query_typed(
                    "select exists (
                         select 1 from pg_index i
                         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
                         where i.indrelid = to_regclass($1::text) and a.attname = $2::text)",
                    &[(&config.source.table, Type::TEXT), (&column, Type::TEXT)],
                )
                .await
                .map_err(db::DbError::query("cannot read the source's indexes"))?
                .first()
                .is_some_and(|row| row.try_get::<_, bool>(0).unwrap_or(false));
            if !led {
                advice.push(Line::Warn(format!(
                    "no index on {} leads with {column:?} (`{key}`): each run scans the whole \
                     table; `create index on {} ({});`",
                    table.quoted_name,
                    table.quoted_name,
                    db::quote_ident(column)
                )));
            }
        }
        return Ok(advice);
    }
    if changes {
        return Ok(advice);
    }
    if kind == "f" {
        // Its read's conditions on plain columns are sent to the remote server (postgres_fdw
        // ships them), whose indexes the local planner's estimate does not show.
        advice.push(Line::Pass(format!(
            "{} is a foreign table: a run's conditions on {:?} and {:?} are sent to its server, \
             which reads them by the remote table's own indexes: `check` cannot see those, so \
             make sure the remote table has both (docs/source.md, \"Indexes on the source\")",
            table.quoted_name,
            config.source.watermark_column(),
            config.mapping.order_id
        )));
        return Ok(advice);
    }
    // A view: ask PostgreSQL what reading a small delta (the last minute) would cost, against
    // reading the whole view. An index that serves the read makes the first a tiny fraction of
    // the second; a sequential scan, or an index whose leading column is not the one looked up
    // (walked whole), costs about as much as the full read.
    let query = source::ReadQuery::new(config, table);
    let (sql, _) = query.read(&source::Filter::Delta(Some(source::Watermark::new(
        table.watermark_kind,
        "",
    ))));
    let recent = "(now() - interval '1 minute')::text";
    let probe = sql.replace("$1::text", recent).replace("$2::text", recent);
    let full = format!("select * from {}", table.quoted_name);
    if let (Some(delta), Some(whole)) = (
        plan_cost(client, &probe).await,
        plan_cost(client, &full).await,
    ) {
        if delta * 10.0 >= whole {
            advice.push(Line::Warn(format!(
                "{} is a view, and PostgreSQL would read about the whole of it to find one \
                 minute of changes ({}); index its base tables on the columns behind {:?} and \
                 {:?} (see docs/source.md, \"Indexes on the source\"), or list them in \
                 [[source.changes]]",
                table.quoted_name,
                super::check_changes::relative_cost(delta, whole),
                config.source.watermark_column(),
                config.mapping.order_id
            )));
        }
    }
    Ok(advice)
}

/// The planner's estimated total cost of `sql` (`None` when it cannot be planned).
pub(super) async fn plan_cost(client: &tokio_postgres::Client, sql: &str) -> Option<f64> {
    let rows = client
        .simple_query(&format!("explain (format json) {sql}"))
        .await
        .ok()?;
    let text = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    })?;
    let plan: serde_json::Value = serde_json::from_str(&text).ok()?;
    plan.get(0)?.get("Plan")?.get("Total Cost")?.as_f64()
}

/// Checks the ledger schema's version, and that the ledger table takes a write (one row,
/// rolled back): a read-only, full or closed ledger fails here as it would fail a run.
async fn check_ledger(config: &Config) -> Result<String, Error> {
    let pool =
        db::pool(&config.ledger_url()?, "ledger", 2)?.with_timeouts(db::Timeouts::ledger(config));
    crate::lock::refuse_transaction_pooler(&pool).await?;
    let client = db::connect(&pool, "ledger").await?;
    pool.within(
        "reading the ledger schema's version",
        crate::ledger::ensure_schema(&client, &config.ledger.schema),
    )
    .await?;
    let ledger = crate::ledger::Ledger::new(
        &config.ledger.schema,
        &config.connector.name,
        &config.destination.dataset_id,
    );
    pool.within(
        "checking that the ledger can be written",
        ledger.check_writable(&client),
    )
    .await?;
    Ok(format!(
        "ledger: schema {:?} at version {}, writable",
        config.ledger.schema,
        db::latest_migration()
    ))
}
