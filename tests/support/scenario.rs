//! The set-up integration tests repeat, written as the story reads: a database, the tables,
//! views and rows the story needs, a config over them, the ledger migrated.
//!
//! ```text
//! let (db, config) = Scenario::lines("shop.lines")
//!     .given(LINES)
//!     .given("insert into shop.lines values …")
//!     .source("batch_size = 1")
//!     .migrated()
//!     .await;
//! ```

use ocapi::config::Config;

use super::{migrate, TestDb};

/// What a scenario's config reads.
enum Shape {
    /// `shop.store_transactions`, the demo-shaped table every [`TestDb`] has, every customer
    /// field mapped (`support::config_text`, a file destination).
    Demo,
    /// A table or view of order lines, created by the scenario's `given` SQL: `order_id`,
    /// `purchased_at`, `updated_at`, `currency`, `email`, `country` and the line items `sku`,
    /// `qty`, `unit_price`, without a value column (the lines are summed).
    Lines {
        /// The table or view.
        table: String,
    },
}

/// A scenario being described; [`Scenario::migrated`] builds it.
pub struct Scenario {
    /// What the config reads.
    shape: Shape,
    /// `connector.name` (line scenarios).
    name: String,
    /// SQL run on the new database, in order, before the config is written.
    given: Vec<String>,
    /// TOML added to `[source]`.
    source: Vec<String>,
    /// TOML added to `[mapping]` (line scenarios).
    mapping: Vec<String>,
}

impl Scenario {
    /// Orders in the demo table (`support::config_text`'s config).
    pub fn demo() -> Self {
        Self::of(Shape::Demo)
    }

    /// Order lines in `table` (created by [`Scenario::given`]), summed into one event per
    /// order; the connector is named `lines-test`.
    pub fn lines(table: &str) -> Self {
        Self::of(Shape::Lines {
            table: table.to_owned(),
        })
    }

    /// A scenario of `shape`, with nothing given yet.
    fn of(shape: Shape) -> Self {
        Self {
            shape,
            name: "lines-test".to_owned(),
            given: Vec::new(),
            source: Vec::new(),
            mapping: Vec::new(),
        }
    }

    /// The connector's name (line scenarios).
    pub fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// SQL the story starts from (tables, views, rows), run in the order given.
    pub fn given(mut self, sql: impl Into<String>) -> Self {
        self.given.push(sql.into());
        self
    }

    /// A line of TOML for `[source]` (`batch_size = 7`, `lookback = "1d"`).
    pub fn source(mut self, toml: &str) -> Self {
        self.source.push(toml.to_owned());
        self
    }

    /// A line of TOML for `[mapping]` (line scenarios).
    pub fn mapping(mut self, toml: &str) -> Self {
        self.mapping.push(toml.to_owned());
        self
    }

    /// The database with the given SQL run and the config written and loaded, not migrated.
    pub async fn build(self) -> (TestDb, Config) {
        let db = TestDb::new().await;
        for sql in &self.given {
            db.exec(sql).await;
        }
        let source = self.source.join("\n");
        let config = match &self.shape {
            Shape::Demo => db.config(&source, None),
            Shape::Lines { table } => {
                lines_config(&db, &self.name, table, &source, &self.mapping.join("\n"))
            }
        };
        (db, config)
    }

    /// [`Scenario::build`], and the ledger migrated: ready for the story's first run.
    pub async fn migrated(self) -> (TestDb, Config) {
        let (db, config) = self.build().await;
        migrate(&config).await;
        (db, config)
    }
}

/// A config named `name` over `table` with line items (sku, qty, unit_price) and no value
/// column; `source_extra` goes into `[source]`, `mapping_extra` into `[mapping]`.
pub fn lines_config(
    db: &TestDb,
    name: &str,
    table: &str,
    source_extra: &str,
    mapping_extra: &str,
) -> Config {
    let text = format!(
        r#"
[connector]
name = "{name}"
lock_wait = "2s"

[source]
url = "{url}"
table = "{table}"
watermark_column = "updated_at"
start = "2000-01-01T00:00:00Z"
{source_extra}

[mapping]
order_id = "order_id"
event_time = "purchased_at"
currency = "currency"
email = "email"
country = "country"
item_id = "sku"
item_quantity = "qty"
item_price = "unit_price"
{mapping_extra}

[destination]
kind = "file"
dataset_id = "1234567890"
path = {out:?}
"#,
        url = db.url,
        out = db.out_path().display().to_string(),
    );
    let path = db.config_path();
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}
