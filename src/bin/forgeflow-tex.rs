//! `forgeflow-tex`: the texture tool.
//!
//! - `info FILE [--json]`: container, format, size, levels, layers, faces,
//!   supercompression, per-level bytes.
//! - `validate FILE...`: exit 0 when all are valid, 3 when any is invalid (one
//!   line per problem), 2 when a file is missing or unreadable, 1 on bad usage.
//! - `extract FILE [--level L] [--layer A] [--face F] [--depth Z] -o OUT`: the raw
//!   bytes of one image, supercompression inflated, exactly as stored uncompressed.
//!
//! `decode` and `upload` come with the block decoders (issue 5).

use std::path::PathBuf;
use std::process::ExitCode;

use forgeflow::jobs::texture::file::{ImageSelector, Ktx2File, TextureError};
use forgeflow::jobs::texture::{detect, Container};
use serde_json::json;

const USAGE: &str = "\
usage: forgeflow-tex COMMAND ...

commands:
  info FILE [--json]            what the file holds
  validate FILE...              check structure (exit 0 valid, 3 invalid, 2 unreadable)
  extract FILE [--level L] [--layer A] [--face F] [--depth Z] -o OUT
                                write one image's bytes, supercompression inflated
  decode, upload                not in this build yet";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("info") => info(&args[1..]),
        Some("validate") => validate(&args[1..]),
        Some("extract") => extract(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("decode" | "upload") => usage(&format!("`{}` is not in this build yet", args[0])),
        Some(other) => usage(&format!("unknown command {other:?}")),
        None => usage("no command"),
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("forgeflow-tex: {msg}\n{USAGE}");
    ExitCode::from(1)
}

/// Reads `path`, telling unreadable (exit 2) from invalid.
fn read(path: &str) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| {
        eprintln!("{path}: cannot read: {e}");
        ExitCode::from(2)
    })
}

fn open(path: &str, bytes: Vec<u8>) -> Result<Ktx2File, ExitCode> {
    match detect(&bytes) {
        Ok(Container::Ktx2) => {}
        Ok(other) => {
            eprintln!("{path}: {other:?} files are not supported by this build yet (KTX2 is)");
            return Err(ExitCode::from(3));
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            return Err(ExitCode::from(3));
        }
    }
    Ktx2File::from_bytes(bytes).map_err(|e| {
        eprintln!("{path}: {e}");
        ExitCode::from(3)
    })
}

fn info(args: &[String]) -> ExitCode {
    let json_out = args.iter().any(|a| a == "--json");
    let files: Vec<&String> = args.iter().filter(|a| *a != "--json").collect();
    let [path] = files[..] else {
        return usage("info takes one FILE");
    };
    let bytes = match read(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let file = match open(path, bytes) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let l = file.layout();
    let levels: Vec<_> = l
        .level_ranges
        .iter()
        .enumerate()
        .map(|(i, (r, inflated))| json!({ "level": i, "stored_bytes": r.len(), "bytes": inflated }))
        .collect();
    let format = l.format.map_or("unknown".to_owned(), |f| f.name.to_owned());
    if json_out {
        let v = json!({
            "file": path, "container": "KTX2", "vk_format": l.vk_format, "format": format,
            "width": l.width, "height": l.height, "depth": l.depth, "layers": l.layers,
            "faces": l.faces, "levels": l.levels,
            "supercompression": format!("{:?}", l.supercompression),
            "color_model": l.color_model, "transfer": l.transfer,
            "per_level": levels,
            "key_values": l.key_values.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(String::from_utf8_lossy(v).into_owned()))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{path}: KTX2, vkFormat {} ({format})", l.vk_format);
        println!(
            "  size {}x{}x{}, {} layer(s), {} face(s), {} level(s)",
            l.width, l.height, l.depth, l.layers, l.faces, l.levels
        );
        println!(
            "  supercompression {:?}, colour model {}, transfer {}",
            l.supercompression, l.color_model, l.transfer
        );
        for (i, (r, inflated)) in l.level_ranges.iter().enumerate() {
            println!("  level {i}: {} bytes stored, {inflated} bytes", r.len());
        }
    }
    ExitCode::SUCCESS
}

fn validate(paths: &[String]) -> ExitCode {
    if paths.is_empty() {
        return usage("validate takes at least one FILE");
    }
    let mut worst = 0u8;
    for path in paths {
        let bytes = match read(path) {
            Ok(b) => b,
            Err(_) => {
                worst = worst.max(2);
                continue;
            }
        };
        match open(path, bytes) {
            Ok(_) => println!("{path}: valid"),
            Err(_) => worst = worst.max(3),
        }
    }
    // Exit 2 (unreadable) takes precedence only when nothing was invalid.
    ExitCode::from(match worst {
        3 => 3,
        2 => 2,
        _ => 0,
    })
}

fn extract(args: &[String]) -> ExitCode {
    let mut sel = ImageSelector::default();
    let (mut path, mut out): (Option<&String>, Option<PathBuf>) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<u32, ExitCode> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| usage(&format!("{name} needs a whole number")))
        };
        let r = match a.as_str() {
            "--level" => number("--level").map(|v| sel.level = v),
            "--layer" => number("--layer").map(|v| sel.layer = v),
            "--face" => number("--face").map(|v| sel.face = v),
            "--depth" => number("--depth").map(|v| sel.depth = v),
            "-o" => match it.next() {
                Some(p) => {
                    out = Some(PathBuf::from(p));
                    Ok(())
                }
                None => Err(usage("-o needs a path")),
            },
            s if s.starts_with('-') => Err(usage(&format!("unknown option {s:?}"))),
            _ if path.is_none() => {
                path = Some(a);
                Ok(())
            }
            _ => Err(usage("extract takes one FILE")),
        };
        if let Err(code) = r {
            return code;
        }
    }
    let (Some(path), Some(out)) = (path, out) else {
        return usage("extract needs FILE and -o OUT");
    };
    let bytes = match read(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let file = match open(path, bytes) {
        Ok(f) => f,
        Err(code) => return code,
    };
    match file.image(sel) {
        Ok(img) => match std::fs::write(&out, &img) {
            Ok(()) => {
                println!(
                    "{path}: wrote {} bytes ({sel:?}) to {}",
                    img.len(),
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: cannot write: {e}", out.display());
                ExitCode::from(2)
            }
        },
        Err(e @ TextureError::NoSuchImage { .. }) => usage(&format!("{path}: {e}")),
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::from(3)
        }
    }
}
