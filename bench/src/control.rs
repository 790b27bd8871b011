//! Control plane and scale (filled below).

use crate::Settings;
use crate::report::Report;

/// What the load generator is told.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Sessions to connect.
    #[arg(long)]
    pub sessions: usize,
}

/// The load generator.
///
/// # Errors
/// Not yet.
pub fn loadgen(_args: &LoadArgs) -> anyhow::Result<()> {
    Ok(())
}

/// The control-plane section.
///
/// # Errors
/// Not yet.
pub fn run(_settings: &Settings, _report: &mut Report) -> anyhow::Result<()> {
    Ok(())
}

/// The scale section.
///
/// # Errors
/// Not yet.
pub fn scale(_settings: &Settings, _report: &mut Report) -> anyhow::Result<()> {
    Ok(())
}
