//! Build script: the admin page's files (src/admin/page/) and the OpenAPI document
//! (docs/openapi.json) are stored in the binary gzip-compressed (72 KB of text become 18 KB of
//! flash). The admin server sends them as they are to a browser (every browser accepts gzip)
//! and inflates them for a client that does not (src/admin/mod.rs, `Asset`). It also makes a new
//! code-layout list (cross/hot/functions.txt) relink the binaries.

#[path = "src/admin/compact.rs"]
mod compact;

use std::path::Path;

fn main() {
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let files: [(&str, &str, bool); 4] = [
        ("src/admin/page/index.html", "index.html.gz", true),
        ("src/admin/page/app.css", "app.css.gz", true),
        ("src/admin/page/app.js", "app.js.gz", true),
        ("docs/openapi.json", "openapi.json.gz", false),
    ];
    for (src, name, compacted) in files {
        println!("cargo:rerun-if-changed={src}");
        let text = std::fs::read_to_string(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let text = if compacted {
            compact::compact(&text)
        } else {
            text
        };
        let gz = compact::gzip(text.as_bytes());
        let dest = Path::new(&out).join(name);
        std::fs::write(&dest, gz).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
    }
    println!("cargo:rerun-if-changed=src/admin/compact.rs");
    println!("cargo:rerun-if-changed=build.rs");
    // The handset builds' code layout: cross/hot/link-gcc reads the list at the link, and cargo
    // links again only what it builds again; it builds a package again when its build script
    // ran again.
    println!("cargo:rerun-if-changed=cross/hot/functions.txt");
    println!("cargo:rerun-if-changed=cross/hot/link-gcc");
}
