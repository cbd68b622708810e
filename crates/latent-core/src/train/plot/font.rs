//! The one font plots use: DejaVu Sans (Bitstream Vera licence, shipped as
//! `assets/fonts/DejaVuSans-LICENSE`), embedded in the binary and registered with plotters once,
//! so drawing text never looks up a system font.

use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

/// The font family name every text element of a plot asks for.
pub(super) const FAMILY: &str = "sans-serif";

/// DejaVu Sans 2.37 (Debian's `fonts-dejavu-core`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the embedded font under [`FAMILY`] (first call only); fails if it cannot be parsed.
pub(super) fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err("the embedded DejaVu Sans font could not be parsed".into())
    }
}
