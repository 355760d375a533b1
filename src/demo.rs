//! `ocapi demo`. Being written.

/// Runs the demo.
#[allow(clippy::unused_async)]
pub async fn run(_rows: u32) -> anyhow::Result<()> {
    anyhow::bail!("the demo is not built yet")
}
