//! `include/kantor.h` is written by hand; this checks it against the library:
//! the same functions with the same signatures (Rust types mapped to C), the
//! same constants with the same values, the same structs with the same
//! fields — and, compiled by the system `cc`, the same sizes and offsets.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use kantor_ffi::*;

fn crate_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Text without C comments, whitespace collapsed.
fn without_comments(c: &str) -> String {
    let mut out = String::new();
    let mut rest = c;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("closed comment") + start + 2;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A C type in one spelling: `const uint8_t *`, `KantorGenerator **`.
fn normal_c_type(t: &str) -> String {
    t.replace('*', " * ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("* *", "**")
}

/// A Rust FFI type as C spells it.
fn c_type_of_rust(t: &str) -> String {
    let t = t.trim();
    if let Some(inner) = t.strip_prefix("*const ") {
        let inner = c_type_of_rust(inner);
        return if inner.ends_with('*') {
            format!("{inner} const *")
        } else {
            format!("const {inner} *")
        };
    }
    if let Some(inner) = t.strip_prefix("*mut ") {
        let inner = c_type_of_rust(inner);
        return if inner.ends_with('*') {
            format!("{inner}*")
        } else {
            format!("{inner} *")
        };
    }
    match t {
        "u8" => "uint8_t",
        "u16" => "uint16_t",
        "u32" => "uint32_t",
        "u64" => "uint64_t",
        "i32" => "int32_t",
        "f32" => "float",
        "usize" => "size_t",
        "c_char" => "char",
        "c_void" => "void",
        "KantorStatus" => "kantor_status",
        other => other,
    }
    .to_string()
}

/// Function name → "ret(param types)" from the header.
fn header_functions(header: &str) -> BTreeMap<String, String> {
    let text = without_comments(header);
    let mut out = BTreeMap::new();
    for decl in text.split(';') {
        let decl = decl.trim();
        let Some(open) = decl.find("kantor_").filter(|_| decl.ends_with(')')) else {
            continue;
        };
        if decl.starts_with("typedef") || decl.contains('{') || decl.contains('}') {
            continue;
        }
        let paren = decl.find('(').unwrap();
        let name = decl[..paren].rsplit([' ', '*']).next().unwrap().to_string();
        let ret = normal_c_type(
            decl[..paren]
                .trim_end()
                .strip_suffix(name.as_str())
                .unwrap(),
        );
        assert!(open < paren);
        let params: Vec<String> = decl[paren + 1..decl.len() - 1]
            .split(',')
            .map(|p| {
                let p = p.trim();
                // Drop the parameter's name: the last identifier.
                let cut = p.rfind([' ', '*']).unwrap() + 1;
                normal_c_type(&p[..cut])
            })
            .collect();
        out.insert(name, format!("{ret}({})", params.join(", ")));
    }
    out
}

/// Function name → "ret(param types)" from the Rust exports, mapped to C.
fn rust_functions(source: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for chunk in source.split("#[no_mangle]").skip(1) {
        let start = chunk.find("fn ").unwrap() + 3;
        let paren = start + chunk[start..].find('(').unwrap();
        let name = chunk[start..paren].trim().to_string();
        let close = paren + chunk[paren..].find(')').unwrap();
        let params: Vec<String> = chunk[paren + 1..close]
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| normal_c_type(&c_type_of_rust(p.split_once(':').unwrap().1)))
            .collect();
        let after = &chunk[close + 1..chunk[close..].find('{').unwrap() + close];
        let ret = after.trim().strip_prefix("->").unwrap_or("void");
        out.insert(
            name,
            format!(
                "{}({})",
                normal_c_type(&c_type_of_rust(ret)),
                params.join(", ")
            ),
        );
    }
    out
}

/// Struct name → [(field, C type)] from the header's typedefs.
fn header_structs(header: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let text = without_comments(header);
    let mut out = BTreeMap::new();
    for part in text.split("typedef struct ").skip(1) {
        let Some(open) = part.find('{') else { continue };
        let name = part[..open].trim().to_string();
        let close = part.find('}').unwrap();
        let fields = part[open + 1..close]
            .split(';')
            .filter(|f| !f.trim().is_empty())
            .map(|f| {
                let (ty, field) = f.trim().rsplit_once(' ').unwrap();
                (field.to_string(), normal_c_type(ty))
            })
            .collect();
        out.insert(name, fields);
    }
    out
}

/// Struct name → [(field, C type)] from the Rust `#[repr(C)]` structs.
fn rust_structs(source: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for part in source.split("#[repr(C)]").skip(1) {
        let start = part.find("pub struct ").unwrap() + "pub struct ".len();
        let open = start + part[start..].find('{').unwrap();
        let name = part[start..open].trim().to_string();
        let close = open + part[open..].find('}').unwrap();
        let fields = part[open + 1..close]
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("pub "))
            .map(|l| {
                let (field, ty) = l.trim_end_matches(',').split_once(':').unwrap();
                (field.trim().to_string(), c_type_of_rust(ty))
            })
            .collect();
        out.insert(name, fields);
    }
    out
}

#[test]
fn the_header_declares_exactly_the_exported_functions() {
    let header = header_functions(&crate_file("include/kantor.h"));
    let rust = rust_functions(&crate_file("src/lib.rs"));
    assert_eq!(rust.len(), 10, "{rust:#?}");
    assert_eq!(header, rust);
    assert_eq!(
        rust["kantor_generator_new"],
        "kantor_status(const uint8_t *, size_t, void *, size_t, KantorGenerator **)"
    );
}

#[test]
fn the_header_has_the_librarys_constants_and_structs() {
    let header = crate_file("include/kantor.h");
    let defines: BTreeMap<String, i64> = header
        .lines()
        .filter_map(|l| l.strip_prefix("#define KANTOR_"))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((format!("KANTOR_{name}"), value.trim().parse().ok()?))
        })
        .collect();
    let values: BTreeMap<String, i64> = [
        ("KANTOR_OK", i64::from(KANTOR_OK)),
        ("KANTOR_ERROR_NULL", i64::from(KANTOR_ERROR_NULL)),
        (
            "KANTOR_ERROR_BUFFER_TOO_SMALL",
            i64::from(KANTOR_ERROR_BUFFER_TOO_SMALL),
        ),
        ("KANTOR_ERROR_BAD_MODEL", i64::from(KANTOR_ERROR_BAD_MODEL)),
        (
            "KANTOR_ERROR_BAD_ARGUMENT",
            i64::from(KANTOR_ERROR_BAD_ARGUMENT),
        ),
        ("KANTOR_ERROR_BAD_STATE", i64::from(KANTOR_ERROR_BAD_STATE)),
        (
            "KANTOR_ERROR_BAD_HANDLE",
            i64::from(KANTOR_ERROR_BAD_HANDLE),
        ),
        ("KANTOR_ERROR_PANIC", i64::from(KANTOR_ERROR_PANIC)),
        (
            "KANTOR_TICKS_PER_QUARTER",
            i64::from(KANTOR_TICKS_PER_QUARTER),
        ),
        ("KANTOR_NOTE_ON", i64::from(KANTOR_NOTE_ON)),
        ("KANTOR_NOTE_OFF", i64::from(KANTOR_NOTE_OFF)),
        ("KANTOR_TEMPO", i64::from(KANTOR_TEMPO)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(defines, values);
    // Every public constant of the library is in the table above.
    let source = crate_file("src/abi.rs");
    let names: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    let mut names = names;
    names.sort_unstable();
    assert_eq!(names, values.keys().map(String::as_str).collect::<Vec<_>>());

    let structs = header_structs(&header);
    assert_eq!(structs, rust_structs(&source));
    assert_eq!(structs.len(), 3);
}

/// The C compiler's view of the structs: sizes, alignments, offsets.
#[test]
fn c_lays_the_structs_out_as_rust_does() {
    let header = crate_file("include/kantor.h");
    let structs = header_structs(&header);
    let mut program = String::from("#include <stdalign.h>\n#include <stddef.h>\n#include <stdio.h>\n#include \"kantor.h\"\nint main(void) {\n");
    for (name, fields) in &structs {
        program.push_str(&format!(
            "  printf(\"{name} %zu %zu\\n\", sizeof({name}), alignof({name}));\n"
        ));
        for (field, _) in fields {
            program.push_str(&format!(
                "  printf(\"{name}.{field} %zu\\n\", offsetof({name}, {field}));\n"
            ));
        }
    }
    program.push_str("  return 0;\n}\n");
    let dir = tempfile_dir();
    let c = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&c, program).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(&include)
        .arg(&c)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("cc runs");
    assert!(status.success(), "kantor.h does not compile cleanly");
    let output = Command::new(&exe).output().unwrap();
    let c_says = String::from_utf8(output.stdout).unwrap();

    macro_rules! layout {
        ($out:ident, $t:ident { $($f:ident),* }) => {
            $out.push_str(&format!("{} {} {}\n", stringify!($t), size_of::<$t>(), align_of::<$t>()));
            $( $out.push_str(&format!("{}.{} {}\n", stringify!($t), stringify!($f), offset_of!($t, $f))); )*
        };
    }
    let mut rust_says = String::new();
    layout!(
        rust_says,
        KantorMessage {
            tick,
            kind,
            channel,
            key,
            velocity,
            micros_per_quarter
        }
    );
    layout!(
        rust_says,
        KantorSampling {
            seed,
            temperature,
            top_k,
            top_p,
            constrained
        }
    );
    layout!(
        rust_says,
        KantorStats {
            tokens,
            ill_formed,
            dropped_notes,
            evictions,
            position,
            now,
            bar_start,
            bar_end,
            idle,
            vocab_size,
            context
        }
    );
    assert_eq!(c_says, rust_says);
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kantor-ffi-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
