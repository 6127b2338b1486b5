//! Opt-in diagnostics: `LKRTC_LOG` (a `tracing` filter such as `info` or
//! `lkrtc_rtc=debug,str0m=warn`) writes the core's log to stderr. Unset, nothing is logged.

use std::sync::Once;

static INIT: Once = Once::new();

/// Installs the stderr logger once, if `LKRTC_LOG` is set to a filter it can parse.
pub fn init_from_env() {
  INIT.call_once(|| {
    let Ok(spec) = std::env::var("LKRTC_LOG") else {
      return;
    };
    match tracing_subscriber::EnvFilter::try_new(&spec) {
      Ok(filter) => {
        let _ = tracing_subscriber::fmt()
          .with_env_filter(filter)
          .with_writer(std::io::stderr)
          .with_ansi(false)
          .try_init();
      }
      Err(e) => eprintln!("lkrtc: LKRTC_LOG={spec:?} is not a log filter ({e}); logging stays off"),
    }
  });
}
