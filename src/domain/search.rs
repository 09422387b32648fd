//! Full-text search for Chinese and English alike (SPEC §7). PostgreSQL has no Chinese parser, so
//! Chinese runs are segmented here: into jieba's words (fine-grained, for search), and into every
//! character and character bigram, so that a query term that is not a word of its own — a
//! substring inside a longer word — still matches. Latin text is left to PostgreSQL's `english`
//! configuration, which case-folds and stems it. A query is every term of its text, AND-ed.

use std::sync::OnceLock;

use jieba_rs::Jieba;

fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// A CJK ideograph (the unified block and its extension A, which cover the procedure's text).
fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// The maximal runs of CJK characters in `text`.
fn cjk_runs(text: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_cjk(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(&text[s..]);
    }
    runs
}

/// `text` with its CJK characters blanked out, for PostgreSQL's `english` parser.
pub fn latin_part(text: &str) -> String {
    text.chars()
        .map(|c| if is_cjk(c) { ' ' } else { c })
        .collect()
}

fn grams(run: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = run.chars().collect();
    chars.windows(n).map(|w| w.iter().collect()).collect()
}

/// The CJK lexemes of `text`, space-separated, for `to_tsvector('simple', …)`: jieba's
/// search segmentation, every character and every bigram of each run.
pub fn cjk_lexemes(text: &str) -> String {
    let mut lexemes: Vec<String> = Vec::new();
    for run in cjk_runs(text) {
        lexemes.extend(
            jieba()
                .cut_for_search(run, true)
                .into_iter()
                .map(|token| token.word.to_owned()),
        );
        lexemes.extend(grams(run, 1));
        lexemes.extend(grams(run, 2));
    }
    lexemes.join(" ")
}

/// A search query: Latin words for `plainto_tsquery('english', …)` and the CJK part as
/// `to_tsquery('simple', …)` syntax, each empty when `q` has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Latin text (stemmed by PostgreSQL).
    pub latin: String,
    /// CJK terms: each jieba word of the query as itself, or as all of its bigrams.
    pub cjk: String,
}

impl SearchQuery {
    /// The query for `q`; `None` when it has no term at all.
    pub fn parse(q: &str) -> Option<SearchQuery> {
        let latin: String = latin_part(q)
            .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_' && c != '.')
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .collect::<Vec<_>>()
            .join(" ");
        // Terms are CJK characters only, so quoting them cannot break the tsquery syntax.
        let terms: Vec<String> = cjk_runs(q)
            .into_iter()
            .flat_map(|run| jieba().cut(run, true))
            .map(|token| {
                let word = token.word;
                let chars = word.chars().count();
                if chars <= 2 {
                    format!("'{word}'")
                } else {
                    let bigrams: Vec<String> = grams(word, 2)
                        .into_iter()
                        .map(|g| format!("'{g}'"))
                        .collect();
                    format!("('{word}' | ({}))", bigrams.join(" & "))
                }
            })
            .collect();
        let query = SearchQuery {
            latin,
            cjk: terms.join(" & "),
        };
        (!query.latin.is_empty() || !query.cjk.is_empty()).then_some(query)
    }
}

/// A similarity query from a whole text (an incident's title and description): any of its
/// words, as `to_tsquery` syntax for `english` (Latin words) and `simple` (Chinese words of two
/// characters or more), each empty when the text has none. At most 32 distinct words each.
pub fn any_of(text: &str) -> (String, String) {
    fn or(words: impl Iterator<Item = String>) -> String {
        let mut seen: Vec<String> = Vec::new();
        for word in words {
            if seen.len() < 32 && !seen.contains(&word) {
                seen.push(word);
            }
        }
        // Words are letters, digits, '-', '_' and '.', or CJK characters: quoting is safe.
        seen.iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" | ")
    }
    let latin = or(latin_part(text)
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_' && c != '.')
        .map(|w| {
            w.trim_matches(|c| c == '-' || c == '.' || c == '_')
                .to_lowercase()
        })
        .filter(|w| w.chars().count() >= 2 && w.chars().any(char::is_alphanumeric)));
    let cjk = or(cjk_runs(text)
        .into_iter()
        .flat_map(|run| jieba().cut(run, true))
        .map(|token| token.word.to_owned())
        .filter(|w| w.chars().count() >= 2));
    (latin, cjk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_indexed_as_words_characters_and_bigrams() {
        let lexemes = cjk_lexemes("升级出错：数据库脚本执行失败 ORA-00942");
        let words: Vec<&str> = lexemes.split(' ').collect();
        for expected in [
            "升级",
            "出错",
            "数据库",
            "脚本",
            "数据",
            "据库",
            "库脚",
            "败",
        ] {
            assert!(words.contains(&expected), "{expected} in {lexemes}");
        }
        assert!(!lexemes.contains("ORA"));
        assert_eq!(latin_part("升级出错 ORA-00942").trim(), "ORA-00942");
    }

    #[test]
    fn a_similarity_query_is_any_word_of_the_text() {
        let (latin, cjk) = any_of("升级出错，ORA-00942 upgrade Error error");
        assert_eq!(latin, "'ora-00942' | 'upgrade' | 'error'");
        assert_eq!(cjk, "'升级' | '出错'");
        assert_eq!(any_of("，。"), (String::new(), String::new()));
    }

    #[test]
    fn a_query_is_every_term_and_a_long_word_may_match_by_its_bigrams() {
        let query = SearchQuery::parse("数据库脚本 upgrade error").unwrap();
        assert_eq!(query.latin, "upgrade error");
        assert_eq!(query.cjk, "('数据库' | ('数据' & '据库')) & '脚本'");
        let chinese = SearchQuery::parse("升级出错").unwrap();
        assert_eq!(chinese.cjk, "'升级' & '出错'");
        assert_eq!(chinese.latin, "");
        assert_eq!(SearchQuery::parse("ORA-00942").unwrap().latin, "ORA-00942");
        assert_eq!(SearchQuery::parse("  ，。! "), None);
    }
}
