//! Links the system libvpx and libaom statically and generates their bindings for the installed
//! versions. Needs libvpx-dev and libaom-dev (headers, .a, .pc) and libclang (bindgen) at build
//! time only.

use std::env;
use std::path::PathBuf;

/// One C library linked statically and bound with bindgen.
struct CLib {
  /// pkg-config name, also the archive's (`lib<name>.a`).
  name: &'static str,
  /// The Debian package that ships it.
  debian: &'static str,
  /// Overrides where `lib<name>.a` is looked for.
  dir_env: &'static str,
  header: &'static str,
  functions: &'static str,
  types: &'static str,
  vars: &'static str,
}

fn main() {
  println!("cargo:rerun-if-changed=build.rs");
  let vpx = link_and_bind(&CLib {
    name: "vpx",
    debian: "libvpx-dev",
    dir_env: "LKRTC_VPX_LIB_DIR",
    header: "src/vpx_sys.h",
    functions: "vpx_.*",
    types: "vpx_.*|vp8.*|VP8.*",
    vars: "VPX_.*|VP8_.*",
  });
  // libvpx's own dependencies (libm, libpthread) are part of glibc / linked by std already.
  println!("cargo:rustc-env=LKRTC_VPX_VERSION={}", vpx.version);
  link_and_bind(&CLib {
    name: "aom",
    debian: "libaom-dev",
    dir_env: "LKRTC_AOM_LIB_DIR",
    header: "src/aom_sys.h",
    functions: "aom_.*",
    types: "aom_.*|aome_.*|aomd_.*|av1d_.*|AOM.*|AV1.*",
    vars: "AOM_.*|AV1_.*|AOMD_.*|AV1D_.*|AOME_.*|AV1E_.*",
  });
  // On musl, the glibc-only functions those archives call (see the file); after them in the link
  // line, whole, so that every reference from them resolves inside the library.
  if env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
    println!("cargo:rerun-if-changed=src/glibc_compat.c");
    cc::Build::new()
      .file("src/glibc_compat.c")
      .cargo_metadata(false)
      .compile("lkrtc_glibc_compat");
    let out = env::var("OUT_DIR").unwrap_or_default();
    println!("cargo:rustc-link-search=native={out}");
    println!("cargo:rustc-link-lib=static:+whole-archive=lkrtc_glibc_compat");
  }
}

/// Links `lib.name` statically (its `.a` from the Debian package) and writes its bindings, for
/// the installed version, to `$OUT_DIR/<name>_sys.rs`.
fn link_and_bind(lib: &CLib) -> pkg_config::Library {
  println!("cargo:rerun-if-changed={}", lib.header);
  println!("cargo:rerun-if-env-changed={}", lib.dir_env);
  let archive = format!("lib{}.a", lib.name);
  let found = match pkg_config::Config::new()
    .cargo_metadata(false)
    .env_metadata(true)
    .probe(lib.name)
  {
    Ok(found) => found,
    Err(e) => fail(&format!(
      "lib{} not found by pkg-config (install {}): {e}",
      lib.name, lib.debian
    )),
  };

  // Where the archive lives: an explicit override, pkg-config's -L paths and libdir, then the C
  // compiler's own search path (Debian's vpx.pc says /usr/lib, the file is in the multiarch dir).
  let mut dirs: Vec<PathBuf> = env::var_os(lib.dir_env).map(PathBuf::from).into_iter().collect();
  dirs.extend(found.link_paths.iter().cloned());
  if let Ok(libdir) = pkg_config::get_variable(lib.name, "libdir") {
    dirs.push(PathBuf::from(libdir));
  }
  dirs.extend(compiler_lib_dir(&archive));
  let Some(dir) = dirs.iter().find(|d| d.join(&archive).is_file()) else {
    fail(&format!(
      "{archive} not found in {dirs:?} (install {}, or set {})",
      lib.debian, lib.dir_env
    ));
  };
  println!("cargo:rustc-link-search=native={}", dir.display());
  println!("cargo:rustc-link-lib=static={}", lib.name);

  let mut builder = bindgen::builder()
    .header(lib.header)
    .allowlist_function(lib.functions)
    .allowlist_type(lib.types)
    .allowlist_var(lib.vars)
    // Plain integer constants: a value a library adds later can never be an invalid Rust enum.
    .default_enum_style(bindgen::EnumVariation::Consts)
    .prepend_enum_name(false)
    .layout_tests(false)
    .generate_comments(false);
  for path in &found.include_paths {
    builder = builder.clang_arg(format!("-I{}", path.display()));
  }
  let bindings = match builder.generate() {
    Ok(b) => b,
    Err(e) => fail(&format!("bindgen failed on the lib{} headers: {e}", lib.name)),
  };
  let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join(format!("{}_sys.rs", lib.name));
  if let Err(e) = bindings.write_to_file(&out) {
    fail(&format!("cannot write {}: {e}", out.display()));
  }
  found
}

/// The directory in which the target's C compiler would find `file`, if it finds it. The
/// compiler is looked up as the cc crate does (`CC_<target>`, `TARGET_CC`, `CC`), so that a cross
/// build finds the target's archive (e.g. /usr/lib/aarch64-linux-gnu), never the host's.
fn compiler_lib_dir(file: &str) -> Option<PathBuf> {
  let target = env::var("TARGET").unwrap_or_default();
  let vars = [
    format!("CC_{target}"),
    format!("CC_{}", target.replace('-', "_")),
    "TARGET_CC".into(),
    "CC".into(),
  ];
  for var in &vars {
    println!("cargo:rerun-if-env-changed={var}");
  }
  let cc = vars
    .iter()
    .find_map(|var| env::var(var).ok())
    .unwrap_or_else(|| "cc".into());
  let out = std::process::Command::new(cc)
    .arg(format!("-print-file-name={file}"))
    .output()
    .ok()?;
  let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
  // Not found: the compiler echoes the bare name back.
  if path.is_absolute() && path.is_file() {
    path.canonicalize().ok()?.parent().map(PathBuf::from)
  } else {
    None
  }
}

fn fail(msg: &str) -> ! {
  eprintln!("lkrtc-codec: {msg}");
  std::process::exit(1);
}
