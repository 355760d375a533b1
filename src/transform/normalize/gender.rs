//! `ge`: `f` or `m` from the words a till or CRM holds: the letter itself, the English words, the
//! titles (`Mr`, `Mrs`, `Ms`, `Miss`, `Sir`, `Dame`, `Lady`…) and the words for woman, man and
//! their titles in common languages. Anything else, non-binary values included, is dropped.
//!
//! No kept data library lists gender words or forms of address (CLDR has neither), so the
//! lists below are the source: each language's words for woman, man, female and male, and its
//! usual titles, as the language's Wiktionary entries give them (translations of *woman*,
//! *man*, *female*, *male*, *Mr*, *Mrs*, *Miss*), for the languages of the markets issue 24
//! names (Ukrainian, Hungarian, Romanian, Hebrew, Thai, Indonesian and Malay, Vietnamese) and
//! those before them.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::Outcome;

/// Words for a woman (lowercase, letters only, without accents where the script's marks are
/// accents): English words and titles, then
/// German, French, Spanish, Italian, Portuguese, Dutch, the Nordic languages, Polish, Czech,
/// Turkish, Finnish, Greek, Russian and Ukrainian, Japanese and Chinese, Korean, Hindi, Arabic.
const FEMALE: &[&str] = &[
    "f",
    "female",
    "woman",
    "women",
    "girl",
    "lady",
    "mrs",
    "ms",
    "miss",
    "missus",
    "dame",
    "madam",
    "maam",
    "frau",
    "fraulein",
    "weiblich",
    "femme",
    "feminin",
    "feminine",
    "madame",
    "mme",
    "mlle",
    "mademoiselle",
    "mujer",
    "femenino",
    "femenina",
    "senora",
    "sra",
    "senorita",
    "srta",
    "dona",
    "donna",
    "femmina",
    "femminile",
    "signora",
    "sigra",
    "signorina",
    "mulher",
    "feminino",
    "senhora",
    "vrouw",
    "vrouwelijk",
    "mevrouw",
    "mevr",
    "kvinna",
    "kvinde",
    "kvinne",
    "kobieta",
    "pani",
    "zena",
    "kadın",
    "kadin",
    "bayan",
    "nainen",
    "γυναικα",
    "θηλυ",
    "θηλυκο",
    "κυρια",
    "ж",
    "жен",
    "женщина",
    "женский",
    "жінка",
    "жіночий",
    "女",
    "女性",
    "女子",
    "女士",
    "여",
    "여성",
    "여자",
    "महिला",
    "स्त्री",
    "انثى",
    "امراة",
    // Ukrainian: the adjective's feminine form (`Жіноча` стать), abbreviation, Mrs, Miss, girl.
    "жіноча",
    "жін",
    "пані",
    "панна",
    "дівчина",
    // Hungarian: woman, female, Mrs, Miss, lady.
    "nő",
    "női",
    "asszony",
    "kisasszony",
    "holgy",
    // Romanian: woman, female, Mrs (and its abbreviation), Miss.
    "femeie",
    "femeiesc",
    "doamna",
    "dna",
    "domnisoara",
    // Hebrew: woman (both spellings), female, Mrs/Ms, the forms' one-letter נ.
    "אישה",
    "אשה",
    "נקבה",
    "גברת",
    "נ",
    // Thai: woman, female sex, Mrs (นาง), Miss (นางสาว, น.ส.), girl (เด็กหญิง, ด.ญ.),
    // the royal title คุณหญิง.
    "หญิง",
    "ผู้หญิง",
    "เพศหญิง",
    "นาง",
    "นางสาว",
    "นส",
    "เด็กหญิง",
    "ดญ",
    "คุณหญิง",
    // Indonesian and Malay: woman, Mrs, Miss, Ms (saudari), Malay Mrs.
    "perempuan",
    "wanita",
    "ibu",
    "nona",
    "sdri",
    "puan",
    // Vietnamese: female, woman, Mrs, Miss.
    "nữ",
    "phụnữ",
    "bà",
    "cô",
    // Titles the 35-locale check (bench/locales) found as Faker's person providers write them,
    // each checked against the language's Wiktionary entry: Portuguese and Spanish Doctora
    // (`Dra.`), Mexican señorita (`Srita.`), Danish and Norwegian fru, Czech and Slovak slečna,
    // Russian and Bulgarian госпожа and госпожица as abbreviated (`г-жа`, `г-ца`), Ukrainian
    // добродійка, Vietnamese chị and quý cô, Arabic Mrs, Miss, professor, doctor and engineer
    // (feminine, with the article), Indonesian Hajjah (`Hj.`), Raden Ajeng (`R.A.`), Puti and
    // Cut (Minangkabau and Acehnese noble women).
    "dra",
    "srita",
    "fru",
    "slecna",
    "гжа",
    "гца",
    "добродійка",
    "chị",
    "quýcô",
    "السيدة",
    "الآنسة",
    "الأستاذة",
    "الدكتورة",
    "المهندسة",
    "hj",
    "ra",
    "puti",
    "cut",
    // Forms of address the trial and a pass over the CLDR markets' languages found missing, each
    // the language's Wiktionary entry for Mrs or Miss: Indonesian nyonya (`Ny.`), Filipino
    // ginang (`Gng.`) and binibini, Dutch mejuffrouw (`Mej.`), Swedish, Danish and Norwegian
    // fröken (`Frk.`), Finnish rouva and neiti, Greek κυρία and δεσποινίς as abbreviated (`κα`,
    // `δις`), Russian and Bulgarian госпожа and госпожица, Croatian gospođa (`gđa`) and
    // gospođica (`gđica`), Turkish hanım, Chinese 小姐 and 太太, Hindi श्रीमती (`Smt.`), सुश्री.
    "nyonya",
    "ny",
    "ginang",
    "gng",
    "binibini",
    "mej",
    "mejuffrouw",
    "froken",
    "frøken",
    "frk",
    "rouva",
    "neiti",
    "κα",
    "δις",
    "δεσποινις",
    "госпожа",
    "госпожица",
    "gospođa",
    "gđa",
    "gospođica",
    "gđica",
    "hanım",
    "hanim",
    "小姐",
    "太太",
    "श्रीमती",
    "shrimati",
    "smt",
    "सुश्री",
];

/// Words for a man, in the same languages as [`FEMALE`].
const MALE: &[&str] = &[
    "m",
    "male",
    "man",
    "men",
    "boy",
    "mr",
    "mister",
    "sir",
    "mann",
    "herr",
    "mannlich",
    "homme",
    "masculin",
    "monsieur",
    "hombre",
    "masculino",
    "senor",
    "sr",
    "varon",
    "uomo",
    "maschio",
    "maschile",
    "signore",
    "sig",
    "homem",
    "senhor",
    "mannelijk",
    "meneer",
    "dhr",
    "heer",
    "mand",
    "mezczyzna",
    "pan",
    "muz",
    "erkek",
    "bay",
    "mies",
    "ανδρας",
    "αντρας",
    "αρσενικο",
    "κυριος",
    "м",
    "муж",
    "мужчина",
    "мужской",
    "чоловік",
    "чоловічий",
    "男",
    "男性",
    "男子",
    "先生",
    "남",
    "남성",
    "남자",
    "पुरुष",
    "ذكر",
    "رجل",
    // Ukrainian: the adjective's masculine-sex form (`Чоловіча` стать), abbreviation, Mr, boy.
    "чоловіча",
    "чол",
    "пан",
    "хлопець",
    // Hungarian: man, Mr.
    "ferfi",
    "úr",
    // Romanian: man, male, Mr (and its abbreviation).
    "barbat",
    "barbatesc",
    "domnul",
    "domn",
    "dl",
    // Hebrew: man, male, Mr, the forms' one-letter ז.
    "גבר",
    "זכר",
    "מר",
    "ז",
    // Thai: man, male sex, Mr (นาย), boy (เด็กชาย, ด.ช.).
    "ชาย",
    "ผู้ชาย",
    "เพศชาย",
    "นาย",
    "เด็กชาย",
    "ดช",
    // Indonesian and Malay: man (pria, laki-laki, lelaki), Mr (bapak, Bpk., Pak, saudara,
    // Malay encik).
    "pria",
    "lakilaki",
    "lelaki",
    "bapak",
    "bpk",
    "pak",
    "sdr",
    "encik",
    // Vietnamese: male, man, Mr.
    "nam",
    "đànông",
    "ông",
    // As in [`FEMALE`]'s last entries: Danish and Norwegian herr (`Hr`), Russian and
    // Bulgarian господин (`г-н`), Ukrainian добродій, Vietnamese anh and quý ông, Arabic Mr,
    // professor, doctor and engineer (masculine, with the article), Indonesian Raden Mas
    // (`R.M.`), Datuk (`Dt.`), Sutan, Kyai Haji (`KH.`), and Thai monks' titles (phra and its
    // ecclesiastical ranks, samanen: novice), whom only men hold.
    "hr",
    "гн",
    "добродій",
    "anh",
    "quýông",
    "السيد",
    "الأستاذ",
    "الدكتور",
    "المهندس",
    "rm",
    "dt",
    "sutan",
    "kh",
    "พระ",
    "พระมหา",
    "พระครู",
    "พระครูใบฎีกา",
    "พระครูปลัด",
    "พระครูธรรมธร",
    "พระครูวินัยธร",
    "พระครูสมุห์",
    "พระสมุห์",
    "พระปลัด",
    "พระใบฎีกา",
    "พระอธิการ",
    "เจ้าอธิการ",
    "สามเณร",
    // As in [`FEMALE`]'s last entries, for Mr: Indonesian and Malay tuan (`Tn.`), Filipino
    // ginoo, Finnish herra, Greek κύριος as abbreviated (`κος`), Russian and Bulgarian
    // господин, Croatian gospodin, Turkish bey, Hindi श्री (`Shri`).
    "tuan",
    "tn",
    "ginoo",
    "herra",
    "κος",
    "господин",
    "gospodin",
    "bey",
    "श्री",
    "shri",
];

/// `ge`: `f` or `m`; anything else is dropped.
pub(super) fn gender(value: &str) -> Outcome {
    let letters = key(value, false);
    let found = lookup(&letters).or_else(|| {
        // Accents off (`Señora`, `γυναίκα`, `Männlich`), for scripts whose marks are accents.
        let bare = key(value, true);
        (bare != letters).then(|| lookup(&bare)).flatten()
    });
    found.map_or(Outcome::Dropped, |g| Outcome::Normalized(g.to_owned()))
}

/// `f` or `m` for a key in [`FEMALE`] or [`MALE`].
fn lookup(key: &str) -> Option<&'static str> {
    if FEMALE.contains(&key) {
        Some("f")
    } else if MALE.contains(&key) {
        Some("m")
    } else {
        None
    }
}

/// The letters of `value` (with their combining marks unless `bare`), lowercased as a whole
/// string: `Mr.` → `mr`, `ma'am` → `maam`, `Señora` → `senora` when `bare`.
fn key(value: &str, bare: bool) -> String {
    if value.is_ascii() {
        return value
            .chars()
            .filter(char::is_ascii_alphabetic)
            .map(|c| c.to_ascii_lowercase())
            .collect();
    }
    value
        .to_lowercase()
        .nfd()
        .filter(|c| {
            if is_combining_mark(*c) {
                !bare
            } else {
                c.is_alphabetic()
            }
        })
        .nfc()
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The value normalized, `None` when dropped.
    fn ge(value: &str) -> Option<String> {
        match gender(value) {
            Outcome::Normalized(value) => Some(value),
            _ => None,
        }
    }

    /// Every listed word, in any case and with a period, is its gender; the lists do not
    /// overlap.
    #[test]
    fn every_listed_word_in_any_case_and_with_a_period_is_its_gender() {
        for (words, want) in [(FEMALE, "f"), (MALE, "m")] {
            for word in words {
                for spelling in [
                    (*word).to_owned(),
                    word.to_uppercase(),
                    format!("{word}."),
                    format!(" ({word}) "),
                ] {
                    assert_eq!(ge(&spelling).as_deref(), Some(want), "{spelling:?}");
                }
            }
        }
        for word in FEMALE {
            assert!(!MALE.contains(word), "{word} is in both lists");
        }
    }

    /// Titles and foreign words with accents or in title case.
    #[test]
    fn titles_and_foreign_words_with_accents_map() {
        let cases = [
            ("Mrs.", "f"),
            ("MISS", "f"),
            ("Ms", "f"),
            ("Dame", "f"),
            ("Lady", "f"),
            ("Ma'am", "f"),
            ("Mme.", "f"),
            ("Señora", "f"),
            ("Sig.ra", "f"),
            ("Fräulein", "f"),
            ("Γυναίκα", "f"),
            ("ΓΥΝΑΊΚΑ", "f"),
            ("Женщина", "f"),
            ("女性", "f"),
            ("여성", "f"),
            ("Mr.", "m"),
            ("SIR", "m"),
            ("Herr", "m"),
            ("Männlich", "m"),
            ("Señor", "m"),
            ("Varón", "m"),
            ("Mężczyzna", "m"),
            ("Άνδρας", "m"),
            ("МУЖЧИНА", "m"),
            ("男性", "m"),
            ("남자", "m"),
            // Issue 24's languages, words and titles.
            ("Жіноча", "f"),
            ("Пані", "f"),
            ("Чоловіча", "m"),
            ("Пан", "m"),
            ("Nő", "f"),
            ("Férfi", "m"),
            ("Ferfi", "m"),
            ("Hölgy", "f"),
            ("Femeie", "f"),
            ("Bărbat", "m"),
            ("Doamnă", "f"),
            ("Domnișoară", "f"),
            ("Dl.", "m"),
            ("נקבה", "f"),
            ("זכר", "m"),
            ("גברת", "f"),
            ("หญิง", "f"),
            ("นางสาว", "f"),
            ("น.ส.", "f"),
            ("ด.ญ.", "f"),
            ("ชาย", "m"),
            ("นาย", "m"),
            ("ด.ช.", "m"),
            ("Perempuan", "f"),
            ("Laki-laki", "m"),
            ("Bpk.", "m"),
            ("Ibu", "f"),
            ("Nữ", "f"),
            ("Phụ nữ", "f"),
            ("Nam", "m"),
            ("Đàn ông", "m"),
            ("Ông", "m"),
            // Titles as Faker's providers of 35 locales write them (bench/locales).
            ("Dra.", "f"),
            ("Srita.", "f"),
            ("Fru", "f"),
            ("slečna", "f"),
            ("Slecna", "f"),
            ("г-жа", "f"),
            ("Г-ца", "f"),
            ("добродійка", "f"),
            ("Chị", "f"),
            ("Quý cô", "f"),
            ("الدكتورة", "f"),
            ("الآنسة", "f"),
            ("Hj.", "f"),
            ("R.A.", "f"),
            ("Hr", "m"),
            ("Г-н", "m"),
            ("добродій", "m"),
            ("Anh", "m"),
            ("Quý ông", "m"),
            ("السيد", "m"),
            ("المهندس", "m"),
            ("R.M.", "m"),
            ("KH.", "m"),
            ("พระครูใบฎีกา", "m"),
            ("สามเณร", "m"),
        ];
        for (raw, want) in cases {
            assert_eq!(ge(raw).as_deref(), Some(want), "{raw}");
        }
    }

    /// Unknown, non-binary and mixed values are dropped.
    #[test]
    fn unknown_non_binary_and_mixed_values_are_dropped() {
        for raw in [
            "x",
            "Mx",
            "Mx.",
            "non-binary",
            "other",
            "unknown",
            "w",
            "h",
            "male/female",
            "Mr & Mrs",
            "Dr",
            "Dr.",
            "Bác",
            "T.",
            "H.",
            "prefer not to say",
            "he7",
        ] {
            assert_eq!(ge(raw), None, "{raw}");
        }
    }

    proptest! {
        /// A word outside both lists never becomes a gender, whatever its case or punctuation.
        #[test]
        fn words_outside_the_lists_are_dropped(word in "[a-zA-Z]{1,12}", punct in "[ .,'()-]{0,3}") {
            let lower = word.to_ascii_lowercase();
            prop_assume!(!FEMALE.contains(&lower.as_str()) && !MALE.contains(&lower.as_str()));
            prop_assert_eq!(ge(&format!("{word}{punct}")), None);
        }

        /// A listed word keeps its gender with any surrounding punctuation and case.
        #[test]
        fn listed_words_survive_case_and_punctuation(
            index in 0..FEMALE.len().min(MALE.len()),
            upper in any::<bool>(),
            punct in "[ .,'()!-]{0,3}",
        ) {
            for (words, want) in [(FEMALE, "f"), (MALE, "m")] {
                let word = if upper { words[index].to_uppercase() } else { words[index].to_owned() };
                let got = ge(&format!("{punct}{word}{punct}"));
                prop_assert_eq!(got.as_deref(), Some(want));
            }
        }
    }
}
