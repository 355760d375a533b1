//! A retail warehouse as docs/source.md models it (headers, lines, stores in two countries,
//! CRM customers, walk-ins), built from the documentation's own SQL, and the fenced blocks of
//! the repository's Markdown files.

use std::path::Path;

use super::TestDb;

/// The blocks fenced with ```` ```info ```` in `text`, in order, each line trimmed (a block may
/// sit in a list item, indented).
pub fn fenced_blocks(text: &str, info: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```") && trimmed[3..].trim() == info => {
                current = Some(String::new());
            }
            Some(block) if trimmed.starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(trimmed);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// A Markdown file of the repository, by its path from the root.
pub fn markdown(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The page whose tables the README's view reads.
const FIRST: &str = "docs/source.md";

/// README.md and every page under docs/, docs/source.md (which creates the tables the README's view
/// reads) first, then the README, then the rest by name.
pub fn documentation() -> Vec<(String, String)> {
    let mut others: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .map(|name| format!("docs/{name}"))
            .filter(|path| path.ends_with(".md") && path != FIRST)
            .collect();
    others.sort();
    let mut paths = vec![FIRST.to_owned(), "README.md".to_owned()];
    paths.extend(others);
    paths
        .into_iter()
        .map(|path| {
            let text = markdown(&path);
            (path, text)
        })
        .collect()
}

/// Stores in Germany and Austria, three CRM customers (one without a country, one abroad), and
/// six receipts: R-10023 (two lines), R-10024 and R-10028 with a customer, R-10025 and R-10026
/// walk-ins, R-10027 a return. Sold two hours ago, register (local) time.
pub const ROWS: &str = "
insert into pos.stores values ('B1', 'Europe/Berlin', 'DE'), ('V1', 'Europe/Vienna', 'AT');
insert into crm.customers values
    (1, 'Anna.Weber@Example.de', '030 1234567', 'Anna', 'Weber', '10115', null, now()),
    (2, 'max@example.at', '0664 1234567', 'Max', 'Huber', '1010', 'AT', now()),
    (3, 'lee@example.com', '+1 650 555 1212', 'Lee', 'Kim', '94035', 'US', now());
insert into pos.order_headers values
    ('R-10023', 'B1', (now() at time zone 'Europe/Berlin') - interval '2 hours', 'EUR', 23.50, 1, 'sale', now()),
    ('R-10024', 'V1', (now() at time zone 'Europe/Vienna') - interval '2 hours', 'EUR', 12.00, 2, 'sale', now()),
    ('R-10025', 'B1', (now() at time zone 'Europe/Berlin') - interval '2 hours', 'EUR', 7.25, null, 'sale', now()),
    ('R-10026', 'V1', (now() at time zone 'Europe/Vienna') - interval '2 hours', 'EUR', 5.00, null, 'sale', now()),
    ('R-10027', 'B1', (now() at time zone 'Europe/Berlin') - interval '2 hours', 'EUR', -7.25, 1, 'return', now()),
    ('R-10028', 'B1', (now() at time zone 'Europe/Berlin') - interval '2 hours', 'EUR', 30.00, 3, 'sale', now());
insert into pos.order_lines values
    ('R-10023', 1, 'SKU-1', 1, 10.00, now()),
    ('R-10023', 2, 'SKU-2', 2, 6.75, now()),
    ('R-10024', 1, 'SKU-1', 1, 12.00, now()),
    ('R-10025', 1, 'SKU-3', 1, 7.25, now()),
    ('R-10026', 1, 'SKU-4', 1, 5.00, now()),
    ('R-10027', 1, 'SKU-3', 1, 7.25, now()),
    ('R-10028', 1, 'SKU-5', 3, 10.00, now());
";

/// Builds the retail warehouse in `db`: docs/source.md's tables, the README's view
/// `pos.ocapi_purchases`, and [`ROWS`].
pub async fn build(db: &TestDb) {
    let tables = fenced_blocks(&markdown("docs/source.md"), "sql")
        .into_iter()
        .find(|block| block.contains("create table pos.order_headers"))
        .expect("docs/source.md's tables");
    db.exec(&tables).await;
    let view = fenced_blocks(&markdown("README.md"), "sql")
        .into_iter()
        .find(|block| block.contains("create view pos.ocapi_purchases"))
        .expect("the README's view");
    db.exec(&view).await;
    db.exec(ROWS).await;
}
