//! Every SQL statement of the store, once, in the one placeholder dialect both backends read:
//! `$1` to `$N`. SQLite numbers `$N` by first appearance, so in each statement the
//! placeholders first appear in order (checked below for every statement). A read that locks
//! rows on PostgreSQL has a second form with the locking clause; the backend picks one.

pub(crate) mod aggregators;
pub(crate) mod cards;
pub(crate) mod clicktopay;
pub(crate) mod consumers;
pub(crate) mod issuers;
pub(crate) mod lifecycle;
pub(crate) mod notify;
pub(crate) mod operators;
pub(crate) mod renewals;

/// Declares statements as [`crate::db::Sql`] consts, and `ALL`, the list the test checks.
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $table:literal, $text:expr;)*) => {
        $($(#[$doc])* pub(crate) const $name: $crate::db::Sql =
            $crate::db::Sql { table: $table, text: $text };)*
        /// Every statement of this module, for the placeholder check.
        #[cfg(test)]
        pub(crate) const ALL: &[&$crate::db::Sql] = &[$(&$name),*];
    };
}
pub(crate) use statements;

#[cfg(test)]
mod tests {
    use super::*;

    /// The placeholder numbers in the order they first appear.
    fn first_appearances(text: &str) -> Vec<u32> {
        let mut seen = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'$' {
                let digits: String = text[i + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let n: u32 = digits.parse().expect("a $ is followed by a number");
                if !seen.contains(&n) {
                    seen.push(n);
                }
                i += 1 + digits.len();
            } else {
                i += 1;
            }
        }
        seen
    }

    #[test]
    fn every_statement_numbers_its_placeholders_in_order_of_first_appearance() {
        let all = [
            aggregators::ALL,
            cards::ALL,
            clicktopay::ALL,
            consumers::ALL,
            issuers::ALL,
            lifecycle::ALL,
            notify::ALL,
            operators::ALL,
            renewals::ALL,
        ]
        .concat();
        assert!(all.len() > 60, "every statement is listed");
        for sql in all {
            assert!(!sql.text.contains('?'), "`?` placeholder in {}", sql.text);
            let order = first_appearances(sql.text);
            let expected: Vec<u32> = (1..).take(order.len()).collect();
            assert_eq!(order, expected, "placeholders out of order in {}", sql.text);
        }
    }

    #[test]
    fn the_check_sees_a_statement_out_of_order() {
        assert_eq!(first_appearances("SELECT $2, $1, $2"), vec![2, 1]);
        assert_eq!(
            first_appearances("VALUES ($1, $2, $1, $10)"),
            vec![1, 2, 10]
        );
    }
}
