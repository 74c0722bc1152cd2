//! The string rules, by example.

use super::syntax::is_uri;
use super::*;

#[test]
fn small_rules() {
    assert!(is_media_type("application/vnd.oci.image.manifest.v1+json"));
    assert!(!is_media_type("invalid"));
    assert!(!is_media_type("/json"));
    assert!(
        check_digest("sha256+b64u.unknownlength:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564=")
            .is_ok()
    );
    assert!(check_digest("sha256+foo+-b:abc").is_err());
    assert!(check_digest("sha256:ABC").is_err());
    assert!(is_date_time("2015-10-31T22:22:56.015925234Z"));
    assert!(is_date_time("1970-01-01T00:00:00+01:00"));
    assert!(!is_date_time("1970-01-01 00:00:00Z"));
    assert!(!is_date_time("1970-13-01T00:00:00Z"));
    assert!(is_uri("https://example.com/foo"));
    assert!(!is_uri("value"));
}
