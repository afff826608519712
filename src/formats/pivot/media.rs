//! `data:` URLs, as chat carries inline images and files. Each target checks the media type
//! against the ones it takes; the parse is shared so they all split a URL the same way.

/// A base64 `data:` URL: `data:<media_type>;base64,<data>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataUrl<'a> {
    /// Between `data:` and `;base64`, as written: may be empty, keeps parameters, not
    /// lower-cased.
    pub media_type: &'a str,
    /// The base64 payload, unchecked.
    pub data: &'a str,
}

/// `None` when `url` is not a base64 `data:` URL (no `data:`, no comma, no `;base64`). The
/// split is at the first comma.
pub(crate) fn data_url(url: &str) -> Option<DataUrl<'_>> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    Some(DataUrl {
        media_type: meta.strip_suffix(";base64")?,
        data,
    })
}

/// A base64 `data:` URL from its parts, for the translators that write the pivot.
pub(crate) fn to_data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_comma_and_keeps_parameters() {
        let u = |media_type, data| Some(DataUrl { media_type, data });
        assert_eq!(
            data_url("data:image/png;base64,AA,BB"),
            u("image/png", "AA,BB")
        );
        assert_eq!(
            data_url("data:image/png;charset=x;base64,AA"),
            u("image/png;charset=x", "AA")
        );
        assert_eq!(data_url("data:;base64,"), u("", ""));
        let url = to_data_url("application/pdf", "JVBE");
        assert_eq!(data_url(&url), u("application/pdf", "JVBE"));
        for bad in [
            "data:image/png,AAAA",
            "data:image/png;base64",
            "DATA:image/png;base64,AA",
            "https://x/y.png",
        ] {
            assert_eq!(data_url(bad), None, "{bad}");
        }
    }
}
