//! Compiles csrc/jpeg_shim.c against the libjpeg-turbo that `turbojpeg-sys` builds from its vendored source
//! (cmake + nasm) and links statically; its headers come through the `links = "turbojpeg"` metadata.

fn main() {
    println!("cargo:rerun-if-changed=csrc/jpeg_shim.c");
    let includes = std::env::var("DEP_TURBOJPEG_INCLUDE")
        .expect("turbojpeg-sys did not report its include directory (DEP_TURBOJPEG_INCLUDE)");
    let mut build = cc::Build::new();
    build.file("csrc/jpeg_shim.c").warnings(true).extra_warnings(true);
    for dir in includes.split(',').filter(|dir| !dir.is_empty()) {
        build.include(dir);
    }
    build.compile("jpeg_shim");
    // `strip = true` leaves the local symbols of libjpeg-turbo's nasm objects in the binary (0.6 MB of its
    // 2.8 MB); the linker drops them when asked to strip everything. Release only: tests keep their symbols.
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-link-arg-bins=-Wl,--strip-all");
        // Relative relocations packed as DT_RELR (glibc 2.36, binutils 2.38): 49 KB less binary.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
