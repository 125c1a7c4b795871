//! What an extension module's binary says about its ABI: the symbols it imports (and from which
//! library, where the format says), the ones it exports, and the libraries it links. ELF,
//! Mach-O (each architecture of a universal binary) and PE, through the `object` crate.

use anyhow::{Result, anyhow, bail};
use object::macho::{FatArch32, FatArch64};
use object::read::macho::{FatArch, MachOFatFile};
use object::{FileKind, Object, ObjectSection, ObjectSymbol};
use serde::Serialize;

use super::list::Version;

/// A binary format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Elf,
    MachO,
    Pe,
}

/// One imported symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The symbol as C names it (Mach-O's leading underscore removed).
    pub name: String,
    /// The library it comes from, when the format records it (PE, some Mach-O); else empty.
    pub library: String,
}

/// One architecture of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    pub format: Format,
    /// `x86_64`, `aarch64`, ... (object's name for it, lower case).
    pub arch: String,
    pub imports: Vec<Import>,
    /// Exported symbol names (Mach-O's leading underscore removed).
    pub exports: Vec<String>,
    /// Linked libraries: ELF `DT_NEEDED`, Mach-O dylib load commands, PE imported DLLs.
    pub libraries: Vec<String>,
    /// Every `PyABIInfo` (3.15's `Py_mod_abi` slot data) found in the bytes.
    pub abi_infos: Vec<AbiInfo>,
}

/// A `PyABIInfo`: `{u8 major = 1, u8 minor = 0, u16 flags, u32 build_version, u32
/// abi_version}`, which every module defined by slots (PEP 793) carries since 3.15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AbiInfo {
    pub flags: u16,
    pub build_version: u32,
    pub abi_version: u32,
}

impl AbiInfo {
    pub const STABLE: u16 = 0x1;
    pub const GIL: u16 = 0x2;
    pub const FREETHREADED: u16 = 0x4;

    /// Loads on both builds (`PyABIInfo_FREETHREADING_AGNOSTIC`).
    pub fn agnostic(&self) -> bool {
        self.flags & (Self::GIL | Self::FREETHREADED) == Self::GIL | Self::FREETHREADED
    }

    /// `abi_version` as a CPython version, `None` when not given.
    pub fn abi(&self) -> Option<Version> {
        (self.abi_version != 0)
            .then(|| Version::new(self.abi_version >> 24, (self.abi_version >> 16) & 0xff))
    }
}

/// Finds `PyABIInfo` structures by their shape, at 4-byte aligned offsets: version 1.0, flags
/// with `PyABIInfo_STABLE`, GIL or free-threaded, and no unknown bits, and two versions that are each 0 ("not
/// given", as PyO3 writes them) or a CPython 3.x hex version (`abi_version` without a micro
/// part). A match elsewhere in the bytes is possible but needs those twelve bytes to line up;
/// the rule that uses this says so.
pub fn scan_abi_infos(data: &[u8], little_endian: bool) -> Vec<AbiInfo> {
    let u16_at = |b: &[u8]| {
        let v = [b[0], b[1]];
        if little_endian {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    };
    let u32_at = |b: &[u8]| {
        let v = [b[0], b[1], b[2], b[3]];
        if little_endian {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    let version = |v: u32| v == 0 || (v >> 24 == 3 && (v >> 16) & 0xff <= 0x40);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 12 <= data.len() {
        let w = &data[i..i + 12];
        if w[0] == 1 && w[1] == 0 {
            let flags = u16_at(&w[2..4]);
            let build_version = u32_at(&w[4..8]);
            let abi_version = u32_at(&w[8..12]);
            // Every real PyABIInfo says GIL, free-threaded or both; a bare `01 00 01 00` and
            // eight zero bytes turned up by chance in cryptography's module.
            if flags & AbiInfo::STABLE != 0
                && flags & (AbiInfo::GIL | AbiInfo::FREETHREADED) != 0
                && flags & !0xf == 0
                && version(build_version)
                && version(abi_version)
                && abi_version & 0xffff == 0
            {
                out.push(AbiInfo {
                    flags,
                    build_version,
                    abi_version,
                });
            }
        }
        i += 4;
    }
    out.dedup();
    out
}

/// Reads a module's bytes: one `Binary` per architecture (more than one only for a Mach-O
/// universal binary). An error says what the bytes are instead.
pub fn read(data: &[u8]) -> Result<Vec<Binary>> {
    let kind = FileKind::parse(data).map_err(|e| anyhow!("not an object file ({e})"))?;
    match kind {
        FileKind::MachOFat32 => fat::<FatArch32>(data),
        FileKind::MachOFat64 => fat::<FatArch64>(data),
        FileKind::Elf32
        | FileKind::Elf64
        | FileKind::MachO32
        | FileKind::MachO64
        | FileKind::Pe32
        | FileKind::Pe64 => Ok(vec![one(data)?]),
        other => bail!("a {other:?} file, not an ELF, Mach-O or PE shared library"),
    }
}

/// The most architectures a universal binary may hold (real ones have two or three; a
/// hostile one could list a slice a million times).
const MAX_ARCHES: usize = 16;

fn fat<Fat: FatArch>(data: &[u8]) -> Result<Vec<Binary>> {
    let file = MachOFatFile::<Fat>::parse(data)
        .map_err(|e| anyhow!("reading the universal binary's header: {e}"))?;
    if file.arches().len() > MAX_ARCHES {
        bail!(
            "a universal binary listing {} architectures (more than {MAX_ARCHES})",
            file.arches().len()
        );
    }
    let mut out = Vec::new();
    for arch in file.arches() {
        let slice = arch
            .data(data)
            .map_err(|e| anyhow!("reading an architecture of the universal binary: {e}"))?;
        out.push(one(slice)?);
    }
    if out.is_empty() {
        bail!("a universal binary without architectures");
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn one(data: &[u8]) -> Result<Binary> {
    let file =
        object::File::parse(data).map_err(|e| anyhow!("not a readable object file ({e})"))?;
    let format = match file.format() {
        object::BinaryFormat::Elf => Format::Elf,
        object::BinaryFormat::MachO => Format::MachO,
        object::BinaryFormat::Pe => Format::Pe,
        other => bail!("a {other:?} object, not an ELF, Mach-O or PE shared library"),
    };
    // Without section headers a linked ELF module still loads, but its dynamic symbols are
    // found only through the section table here: refuse rather than pass it as clean.
    if format == Format::Elf
        && file.kind() != object::ObjectKind::Relocatable
        && file.section_by_name(".dynsym").is_none()
    {
        bail!(
            "an ELF module without a `.dynsym` section (section headers stripped?): its symbols cannot be audited"
        );
    }
    let unmangle = |name: &[u8]| {
        let name = text(name);
        match format {
            Format::MachO => name.strip_prefix('_').map(str::to_string).unwrap_or(name),
            _ => name,
        }
    };
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    if file.kind() == object::ObjectKind::Relocatable {
        // An object file before linking (what tests write): its symbol table is the
        // interface; a linked module's dynamic tables are read below.
        for symbol in file.symbols() {
            let Ok(name) = symbol.name_bytes() else {
                continue;
            };
            if symbol.is_undefined() {
                imports.push(Import {
                    name: unmangle(name),
                    library: String::new(),
                });
            } else if symbol.is_global() {
                exports.push(unmangle(name));
            }
        }
    }
    for import in file
        .imports()
        .map_err(|e| anyhow!("reading the imported symbols: {e}"))?
    {
        let import = import.map_err(|e| anyhow!("reading an imported symbol: {e}"))?;
        // An import by ordinal names no symbol: nothing to check against a list of names.
        if let Some(name) = import.name().name() {
            imports.push(Import {
                name: unmangle(name),
                library: text(import.library()),
            });
        }
    }
    for export in file
        .exports()
        .map_err(|e| anyhow!("reading the exported symbols: {e}"))?
    {
        let export = export.map_err(|e| anyhow!("reading an exported symbol: {e}"))?;
        if let Some(name) = export.name().name() {
            exports.push(unmangle(name));
        }
    }
    let mut libraries = Vec::new();
    for library in file
        .import_libraries()
        .map_err(|e| anyhow!("reading the linked libraries: {e}"))?
    {
        let library = library.map_err(|e| anyhow!("reading a linked library: {e}"))?;
        libraries.push(text(library.name()));
    }
    // `PyABIInfo_VAR` (C) and PyO3 both make it a writable static: look in the data sections
    // only, where a chance match is far less likely than in code or read-only data.
    let mut abi_infos = Vec::new();
    for section in file.sections() {
        if section.kind() == object::SectionKind::Data
            && let Ok(bytes) = section.data()
        {
            abi_infos.extend(scan_abi_infos(bytes, file.is_little_endian()));
        }
    }
    imports.sort_by(|a, b| a.name.cmp(&b.name).then(a.library.cmp(&b.library)));
    imports.dedup();
    exports.sort();
    exports.dedup();
    Ok(Binary {
        format,
        arch: format!("{:?}", file.architecture()).to_lowercase(),
        imports,
        exports,
        libraries,
        abi_infos,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use object::write::{Object as Writer, Symbol, SymbolSection};
    use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolKind, SymbolScope};

    /// A relocatable object with these undefined and defined symbols: what the writer can
    /// make, and what `read` sees as imports and exports for ELF symbols.
    pub fn object_with(format: BinaryFormat, imports: &[&str], exports: &[&str]) -> Vec<u8> {
        let mut obj = Writer::new(format, Architecture::X86_64, Endianness::Little);
        let text = obj.section_id(object::write::StandardSection::Text);
        obj.append_section_data(text, &[0xc3; 16], 1);
        // The writer adds Mach-O's leading underscore itself (its default mangling).
        let prefix = "";
        for name in imports {
            obj.add_symbol(Symbol {
                name: format!("{prefix}{name}").into_bytes(),
                value: 0,
                size: 0,
                kind: SymbolKind::Text,
                scope: SymbolScope::Dynamic,
                weak: false,
                section: SymbolSection::Undefined,
                flags: SymbolFlags::None,
            });
        }
        for (i, name) in exports.iter().enumerate() {
            obj.add_symbol(Symbol {
                name: format!("{prefix}{name}").into_bytes(),
                value: i as u64,
                size: 1,
                kind: SymbolKind::Text,
                scope: SymbolScope::Dynamic,
                weak: false,
                section: SymbolSection::Section(text),
                flags: SymbolFlags::None,
            });
        }
        obj.write().unwrap()
    }

    #[test]
    fn abi_infos_are_found_by_their_shape() {
        let mut data = vec![0u8; 8];
        // C with 3.15's headers: version 1.0, stable|gil|free-threaded, build, abi 3.15.
        data.extend([1, 0, 7, 0, 0xc1, 0, 0x0f, 3, 0, 0, 0x0f, 3]);
        // PyO3: no versions given.
        data.extend([1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // A chance `01 00 01 00` and zeros (seen in a real module): no layout bit, not one.
        data.extend([1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // A micro version in abi_version: not one.
        data.extend([1, 0, 7, 0, 0, 0, 0, 0, 1, 0, 0x0f, 3]);
        let found = scan_abi_infos(&data, true);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].agnostic());
        assert_eq!(found[0].abi(), Some(Version::new(3, 15)));
        assert!(!found[1].agnostic());
        assert_eq!(found[1].abi(), None);
        // The same bytes big-endian: the flags are 0x0700, unknown bits.
        assert!(scan_abi_infos(&data[..20], false).is_empty());
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        for data in [
            &b""[..],
            b"not an object",
            b"\x7fELF\x02\x01\x01\0garbage",
            b"\xca\xfe\xba\xbe\0\0\0\x05",
            b"MZ\x90\0",
        ] {
            assert!(read(data).is_err(), "{data:?}");
        }
    }

    #[test]
    fn a_truncated_real_object_is_an_error() {
        let obj = object_with(BinaryFormat::Elf, &["PyLong_FromLong"], &["PyInit_m"]);
        for cut in [16, 64, obj.len() / 2] {
            let _ = read(&obj[..cut]); // never panics; may or may not parse the head
        }
    }
}
