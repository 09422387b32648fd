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

/// PostgreSQL's English stop words (`english.stop`) of two letters or more: the `english`
/// configuration drops them from documents and queries alike.
const ENGLISH_STOP_WORDS: [&str; 123] = [
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "can",
    "will",
    "just",
    "don",
    "should",
    "now",
];

/// The upper-case abbreviations in `text` that are English stop words in lower case (`HIS`, a
/// hospital information system; `IT`; `WHO`), lower-cased. `english` would drop them, so they
/// are kept as `simple` lexemes: searching `HIS` finds the incidents about the HIS, not every
/// incident. A lower-case `his` stays a stop word.
pub fn kept_abbreviations(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| word.len() >= 2 && word.bytes().all(|b| b.is_ascii_uppercase()))
        .map(str::to_ascii_lowercase)
        .filter(|word| ENGLISH_STOP_WORDS.contains(&word.as_str()))
}

/// A PostgreSQL regular expression matching text that holds any of [`kept_abbreviations`]
/// (or a little more: it is used to find documents to write again, never to search).
pub fn abbreviations_pattern() -> String {
    let words: Vec<String> = ENGLISH_STOP_WORDS
        .iter()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    format!("(^|[^A-Za-z0-9])({})($|[^A-Za-z0-9])", words.join("|"))
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

/// The lexemes of `text` that `english` cannot make, space-separated, for
/// `to_tsvector('simple', …)`: of each CJK run jieba's search segmentation, every character and
/// every bigram; and the [`kept_abbreviations`].
pub fn simple_lexemes(text: &str) -> String {
    let mut lexemes: Vec<String> = kept_abbreviations(text).collect();
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
    /// CJK terms (each jieba word of the query as itself, or as all of its bigrams) and the
    /// [`kept_abbreviations`], as `to_tsquery('simple', …)` syntax.
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
        // Terms are CJK characters or ASCII letters only, so quoting them cannot break the
        // tsquery syntax.
        let abbreviations = kept_abbreviations(q).map(|word| format!("'{word}'"));
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
            .chain(abbreviations)
            .collect();
        let query = SearchQuery {
            latin,
            cjk: terms.join(" & "),
        };
        (!query.latin.is_empty() || !query.cjk.is_empty()).then_some(query)
    }
}

/// Weights of an incident's text (SPEC §14), highest first: number and title `A`, description
/// `B`, solution, workaround and public notes `C`, internal notes `D`. Customers match and are
/// ranked on [`PUBLIC_WEIGHTS`] only, so an internal note neither finds nor lifts an incident
/// for them.
pub const WEIGHTS: [char; 4] = ['A', 'B', 'C', 'D'];

/// The weights a customer's search reads, as `ts_filter` takes them.
pub const PUBLIC_WEIGHTS: &str = "{a,b,c}";

/// An incident's searchable text split by weight ([`WEIGHTS`]), each part as the Latin text for
/// `to_tsvector('english', …)` and the [`simple_lexemes`] for `to_tsvector('simple', …)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncidentDocument {
    /// Latin text per weight.
    pub latin: [String; 4],
    /// Space-separated [`simple_lexemes`] per weight.
    pub cjk: [String; 4],
}

/// The fields of an incident its search reads; a write that changes none of them leaves the
/// index as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct IncidentText {
    pub number: String,
    pub title: String,
    pub description: String,
    pub solution: Option<String>,
    pub workaround: Option<String>,
}

impl IncidentText {
    /// The searchable fields of `incident`.
    pub fn of(incident: &crate::domain::incident::Incident) -> IncidentText {
        IncidentText {
            number: incident.number.clone(),
            title: incident.title.clone(),
            description: incident.description.clone(),
            solution: incident.solution.clone(),
            workaround: incident.workaround.clone(),
        }
    }

    /// The document of this text and of `notes` (`(body, internal)`).
    pub fn document<'a>(
        &self,
        notes: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> IncidentDocument {
        let mut parts: [Vec<&str>; 4] = Default::default();
        parts[0].extend([self.number.as_str(), self.title.as_str()]);
        parts[1].push(&self.description);
        parts[2].extend(self.solution.as_deref());
        parts[2].extend(self.workaround.as_deref());
        for (body, internal) in notes {
            parts[if internal { 3 } else { 2 }].push(body);
        }
        let mut document = IncidentDocument::default();
        for (weight, texts) in parts.iter().enumerate() {
            // A line break between fields keeps a word of one from running into the next.
            let text = texts.join("\n");
            document.latin[weight] = latin_part(&text);
            document.cjk[weight] = simple_lexemes(&text);
        }
        document
    }
}

/// The incident id a query names by number, as SPEC §14's number lookup reads it: `INC-000123`
/// (any case, the hyphen optional) or the six or more digits of a number (`000123`). Shorter
/// bare digits are text: `500` is more likely an error code than incident 500.
pub fn number_lookup(q: &str) -> Option<i64> {
    let q = q.trim();
    let digits = match q.get(..3) {
        Some(prefix) if prefix.eq_ignore_ascii_case("inc") => {
            q[3..].strip_prefix('-').unwrap_or(&q[3..])
        }
        _ if q.len() >= 6 => q,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok().filter(|id| *id > 0)
}

/// The text suggestions are sought for, split for PostgreSQL: the title's and the
/// description's Latin part (for `english`) and Chinese words of two characters or more,
/// space-separated (for `simple`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SimilarityText {
    pub title_latin: String,
    pub title_cjk: String,
    pub body_latin: String,
    pub body_cjk: String,
}

impl SimilarityText {
    /// The text of an incident with `title` and `description`.
    pub fn of(title: &str, description: &str) -> SimilarityText {
        let words = |text: &str| {
            cjk_runs(text)
                .into_iter()
                .flat_map(|run| jieba().cut(run, true))
                .map(|token| token.word)
                .filter(|w| w.chars().count() >= 2)
                .collect::<Vec<_>>()
                .join(" ")
        };
        SimilarityText {
            title_latin: latin_part(title),
            title_cjk: words(title),
            body_latin: latin_part(description),
            body_cjk: words(description),
        }
    }
}

/// A lexeme of the text suggestions are sought for.
#[derive(Debug, Clone, PartialEq)]
pub struct Lexeme {
    /// As PostgreSQL normalised it (stemmed for Latin words).
    pub text: String,
    /// Whether the title has it (else only the description).
    pub in_title: bool,
    /// The share of the searched documents that contain it, from the planner's statistics
    /// (0 when it is not among their most common lexemes).
    pub share: f64,
}

/// Lexemes in more than this share of the documents are too common to find candidates by;
/// they still count in the ranking.
pub const COMMON_SHARE: f64 = 0.05;
/// The first tier requires at most this many of the title's rarest words: each more costs the
/// search index another posting list to intersect, and adds little once the rarest agree.
pub const CORE_WORDS: usize = 3;
/// At most this many lexemes make up a query.
const MOST_LEXEMES: usize = 32;

/// How documents similar to a text are found without ranking every document that shares a
/// word with it. Candidates come first from the newest documents of the incident's own
/// subcategory that share an uncommon word of its title (`same_subcategory`), then from the
/// search index, tier by tier — those with the title's rarest words (at most [`CORE_WORDS`],
/// all required), then those with any uncommon word of the title, then with any uncommon word
/// at all — until enough are gathered; only those are ranked by `rank`, any of the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimilarityQuery {
    /// The `tsquery` text candidates of the same subcategory must match: any uncommon word of
    /// the title, or any word of it when none is uncommon.
    pub same_subcategory: String,
    /// `tsquery` texts for the search index, strictest first; `None` where a tier has no word.
    pub tiers: [Option<String>; 3],
    /// The `tsquery` text the candidates are ranked by.
    pub rank: String,
}

fn tsquery_literal(lexeme: &str) -> String {
    format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''"))
}

fn join(lexemes: &[&Lexeme], operator: &str) -> Option<String> {
    (!lexemes.is_empty()).then(|| {
        lexemes
            .iter()
            .map(|l| tsquery_literal(&l.text))
            .collect::<Vec<_>>()
            .join(operator)
    })
}

impl SimilarityQuery {
    /// The query for a text of `lexemes`; `None` when it has none.
    pub fn new(lexemes: &[Lexeme]) -> Option<SimilarityQuery> {
        let mut by_rarity: Vec<&Lexeme> = lexemes.iter().collect();
        by_rarity.sort_by(|a, b| a.share.total_cmp(&b.share).then(a.text.cmp(&b.text)));
        by_rarity.truncate(MOST_LEXEMES);
        let title: Vec<&Lexeme> = by_rarity.iter().copied().filter(|l| l.in_title).collect();
        let uncommon: Vec<&Lexeme> = by_rarity
            .iter()
            .copied()
            .filter(|l| l.share <= COMMON_SHARE)
            .collect();
        let uncommon_title: Vec<&Lexeme> =
            uncommon.iter().copied().filter(|l| l.in_title).collect();
        let mut tiers = [
            join(&title[..title.len().min(CORE_WORDS)], " & "),
            join(&uncommon_title, " | "),
            join(&uncommon, " | "),
        ];
        // A tier that repeats the one before finds nothing new.
        for i in (1..tiers.len()).rev() {
            if tiers[i].is_some() && tiers[i] == tiers[i - 1] {
                tiers[i] = None;
            }
        }
        let rank = join(&by_rarity, " | ")?;
        Some(SimilarityQuery {
            same_subcategory: tiers[1]
                .clone()
                .or_else(|| join(&title, " | "))
                .unwrap_or_else(|| rank.clone()),
            tiers,
            rank,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_case_abbreviations_that_are_stop_words_are_kept() {
        let kept: Vec<String> =
            kept_abbreviations("HIS系统 down, IT says: WHO knows; ERP ok, his PC").collect();
        assert_eq!(kept, ["his", "it", "who"]);
        // Kept in the document's simple part, and required by a query.
        let lexemes = simple_lexemes("HIS无法登录");
        assert!(lexemes.split(' ').any(|w| w == "his"), "{lexemes}");
        let query = SearchQuery::parse("HIS 登录").unwrap();
        assert_eq!(query.cjk, "'登录' & 'his'");
        assert_eq!(query.latin, "HIS");
        // A lower-case stop word, a single letter and a word that is no stop word are left to
        // `english`.
        assert_eq!(SearchQuery::parse("his").unwrap().cjk, "");
        assert_eq!(kept_abbreviations("A I S T").count(), 0);
        assert_eq!(SearchQuery::parse("ERP").unwrap().cjk, "");
    }

    #[test]
    fn the_pattern_finds_every_kept_abbreviation() {
        let pattern = abbreviations_pattern();
        assert!(pattern.starts_with("(^|[^A-Za-z0-9])(ME|MY|"), "{pattern}");
        for word in ENGLISH_STOP_WORDS {
            assert!(
                pattern.contains(&format!("|{}|", word.to_ascii_uppercase()))
                    || pattern.contains(&format!("({}|", word.to_ascii_uppercase()))
                    || pattern.contains(&format!("|{})", word.to_ascii_uppercase()))
            );
        }
    }

    #[test]
    fn chinese_is_indexed_as_words_characters_and_bigrams() {
        let lexemes = simple_lexemes("升级出错：数据库脚本执行失败 ORA-00942");
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
    fn similarity_text_keeps_title_and_description_apart() {
        let text = SimilarityText::of("升级出错 ORA-00942", "数据库脚本，请处理");
        assert_eq!(text.title_cjk, "升级 出错");
        assert_eq!(text.title_latin.trim(), "ORA-00942");
        assert_eq!(text.body_cjk, "数据库 脚本 处理");
        assert_eq!(text.body_latin.trim(), "，");
    }

    fn lexeme(text: &str, in_title: bool, share: f64) -> Lexeme {
        Lexeme {
            text: text.into(),
            in_title,
            share,
        }
    }

    #[test]
    fn candidates_come_from_the_rarest_title_words_then_uncommon_title_words_then_any_uncommon_word()
     {
        let query = SimilarityQuery::new(&[
            lexeme("升级", true, 0.2),
            lexeme("出错", true, 0.01),
            lexeme("脚本", false, 0.0),
            lexeme("处理", false, 0.9),
            lexeme("系统", true, 0.6),
            lexeme("his", true, 0.3),
        ])
        .unwrap();
        assert_eq!(
            query.tiers,
            [
                Some("'出错' & '升级' & 'his'".to_owned()),
                Some("'出错'".to_owned()),
                Some("'脚本' | '出错'".to_owned()),
            ]
        );
        assert_eq!(query.same_subcategory, "'出错'");
        assert_eq!(
            query.rank,
            "'脚本' | '出错' | '升级' | 'his' | '系统' | '处理'"
        );
        assert_eq!(SimilarityQuery::new(&[]), None);
    }

    #[test]
    fn repeated_or_empty_tiers_are_left_out_and_lexemes_are_quoted() {
        let query = SimilarityQuery::new(&[lexeme("it's", true, 0.0)]).unwrap();
        assert_eq!(query.tiers, [Some("'it''s'".to_owned()), None, None]);
        let common = SimilarityQuery::new(&[lexeme("处理", false, 0.9)]).unwrap();
        assert_eq!(common.tiers, [None, None, None]);
        assert_eq!(common.rank, "'处理'");
        assert_eq!(common.same_subcategory, "'处理'");
        let common_title =
            SimilarityQuery::new(&[lexeme("系统", true, 0.4), lexeme("升级", true, 0.3)]).unwrap();
        assert_eq!(common_title.same_subcategory, "'升级' | '系统'");
    }

    #[test]
    fn an_incident_document_weighs_title_over_description_over_solution_and_notes() {
        let text = IncidentText {
            number: "INC-000042".into(),
            title: "财务系统升级出错".into(),
            description: "Upgrade errors on the ledger".into(),
            solution: Some("回滚补丁".into()),
            workaround: None,
        };
        let document = text.document([("客户已知晓", false), ("root password is hunter2", true)]);
        assert!(document.latin[0].contains("INC-000042"));
        assert!(document.cjk[0].split(' ').any(|w| w == "财务"));
        assert!(document.latin[1].contains("Upgrade errors"));
        assert!(document.cjk[2].split(' ').any(|w| w == "回滚"));
        assert!(document.cjk[2].split(' ').any(|w| w == "客户"));
        assert!(document.latin[3].contains("hunter2"));
        assert!(!document.latin[2].contains("hunter2"));
        assert_eq!(document.cjk[3], "");
    }

    #[test]
    fn a_number_is_looked_up_by_its_prefix_or_its_six_digits() {
        assert_eq!(number_lookup("INC-000123"), Some(123));
        assert_eq!(number_lookup(" inc000123 "), Some(123));
        assert_eq!(number_lookup("Inc-7"), Some(7));
        assert_eq!(number_lookup("000123"), Some(123));
        assert_eq!(number_lookup("1234567"), Some(1_234_567));
        assert_eq!(number_lookup("500"), None);
        assert_eq!(number_lookup("INC-"), None);
        assert_eq!(number_lookup("INC-12a"), None);
        assert_eq!(number_lookup("incident"), None);
        assert_eq!(number_lookup("INC-000000"), None);
        assert_eq!(number_lookup("INC-99999999999999999999"), None);
        assert_eq!(number_lookup("升级出错"), None);
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
