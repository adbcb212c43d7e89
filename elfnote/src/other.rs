//! Notes of owners other than Xen: the GNU build-id and ABI tag, Linux's notes, and anything
//! else, reported with their raw descriptor.

use serde::Serialize;

use crate::ByteOrder;

/// `NT_GNU_BUILD_ID`.
pub const NT_GNU_BUILD_ID: u32 = 3;

/// A note whose owner is not Xen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherNote {
    /// The owner name (`"GNU"`, `"Linux"`, ...), lossily decoded, without its NUL.
    pub owner: String,
    /// The note type.
    #[serde(rename = "type")]
    pub n_type: u32,
    /// A name for the type, where the owner's convention is known.
    pub name: Option<&'static str>,
    /// The descriptor as lower-case hex.
    pub desc: String,
    /// A readable rendering of the descriptor, where the type is known to be a string or number.
    pub text: Option<String>,
    /// File offset of the note header.
    pub offset: u64,
}

impl OtherNote {
    pub(crate) fn new(
        owner: &[u8],
        n_type: u32,
        desc: &[u8],
        offset: u64,
        order: ByteOrder,
    ) -> OtherNote {
        let owner = String::from_utf8_lossy(owner).into_owned();
        // Names from binutils' readelf (GNU) and the kernel's include/linux/elfnote.h and
        // include/uapi/linux/elf.h (Linux).
        let (name, text) = match (owner.as_str(), n_type) {
            ("GNU", 1) => (Some("NT_GNU_ABI_TAG"), None),
            ("GNU", 3) => (Some("NT_GNU_BUILD_ID"), None),
            ("GNU", 4) => (Some("NT_GNU_GOLD_VERSION"), string(desc)),
            ("GNU", 5) => (Some("NT_GNU_PROPERTY_TYPE_0"), None),
            ("Linux", 0x100) => (Some("LINUX_ELFNOTE_BUILD_SALT"), string(desc)),
            ("Linux", 0x101) => (Some("LINUX_ELFNOTE_LTO_INFO"), number(desc, order)),
            ("Linux", 6) => (Some("LINUX_VERSION_CODE"), version_code(desc, order)),
            _ => (None, None),
        };
        OtherNote {
            owner,
            n_type,
            name,
            desc: desc.iter().map(|b| format!("{b:02x}")).collect(),
            text,
            offset,
        }
    }
}

fn string(desc: &[u8]) -> Option<String> {
    Some(crate::xen::note_string(desc).0)
}

fn word(desc: &[u8], order: ByteOrder) -> Option<u32> {
    let b: [u8; 4] = desc.try_into().ok()?;
    Some(match order {
        ByteOrder::Little => u32::from_le_bytes(b),
        ByteOrder::Big => u32::from_be_bytes(b),
    })
}

fn number(desc: &[u8], order: ByteOrder) -> Option<String> {
    word(desc, order).map(|v| v.to_string())
}

fn version_code(desc: &[u8], order: ByteOrder) -> Option<String> {
    word(desc, order).map(|v| format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff))
}
