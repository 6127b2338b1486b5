//! Links the Node addon: napi's linker setup, plus the C++ runtime openh264 needs.
fn main() {
  napi_build::setup();
  // scripts/build-addon.mjs builds linux-gnu addons with CXXSTDLIB_<target> set empty, so cc
  // links no C++ runtime for openh264; the static libstdc++ goes at the end of the link instead,
  // and the addon needs only libc, libm and libgcc_s at run time. Plain `cargo build` keeps the
  // usual dynamic libstdc++.
  let target = std::env::var("TARGET").unwrap_or_default();
  let var = format!("CXXSTDLIB_{}", target.replace('-', "_"));
  println!("cargo:rerun-if-env-changed={var}");
  if target.ends_with("-linux-gnu") && std::env::var(&var).is_ok_and(|v| v.is_empty()) {
    // libgcc.a after it: GCC builds libstdc++.a for aarch64 with outline atomics, whose helpers
    // (`__aarch64_swp4_acq_rel`, ...) live there; rustc links only libgcc_s, which lacks them.
    for arg in ["-Wl,-Bstatic", "-lstdc++", "-lgcc", "-Wl,-Bdynamic"] {
      println!("cargo:rustc-link-arg-cdylib={arg}");
    }
  }
}
