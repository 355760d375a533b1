//! A local stand-in for the Graph API's Conversions API endpoint. STUB: issue #4.

/// `ocapi sandbox` arguments (stub).
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {}

/// Serves until Ctrl-C (stub).
#[allow(clippy::unused_async)]
pub async fn run_cli(_args: SandboxArgs) -> std::io::Result<()> {
    Ok(())
}
