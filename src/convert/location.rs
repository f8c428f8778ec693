//! Where in a client's request a conversion step is, for the 400 that
//! names it (shared by every door's conversion).

use std::fmt::Display;

/// Where in the request a conversion step is (`messages[3].content[1]`),
/// written out only when an error names it: a long chat is converted
/// without a string made per message, per part and per tool call. Each
/// step borrows the one above it.
#[derive(Clone, Copy)]
pub struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: Step,
}

#[derive(Clone, Copy)]
enum Step {
    /// `.name`
    Field(&'static str),
    /// `.name[index]` (`name[index]` at the top)
    Item(&'static str, usize),
    /// `[index]`
    Index(usize),
}

impl At<'static> {
    /// `name[index]` at the top of the request (`messages[3]`, `tools[0]`).
    pub fn top(name: &'static str, index: usize) -> At<'static> {
        At { parent: None, step: Step::Item(name, index) }
    }

    /// A field at the top of the request (`previous_response_id`).
    pub fn named(name: &'static str) -> At<'static> {
        At { parent: None, step: Step::Field(name) }
    }
}

impl<'a> At<'a> {
    pub fn field(&'a self, name: &'static str) -> At<'a> {
        At { parent: Some(self), step: Step::Field(name) }
    }

    pub fn item(&'a self, name: &'static str, index: usize) -> At<'a> {
        At { parent: Some(self), step: Step::Item(name, index) }
    }

    pub fn index(&'a self, index: usize) -> At<'a> {
        At { parent: Some(self), step: Step::Index(index) }
    }
}

impl Display for At<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(formatter)?;
        }
        let dot = if self.parent.is_some() { "." } else { "" };
        match self.step {
            Step::Field(name) => write!(formatter, "{dot}{name}"),
            Step::Item(name, index) => write!(formatter, "{dot}{name}[{index}]"),
            Step::Index(index) => write!(formatter, "[{index}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::At;

    #[test]
    fn a_location_reads_as_the_request_does() {
        let message = At::top("messages", 3);
        let part = message.item("content", 1);
        assert_eq!(part.field("image_url").to_string(), "messages[3].content[1].image_url");
        assert_eq!(At::named("input").index(2).field("output").to_string(), "input[2].output");
        assert_eq!(At::named("previous_response_id").to_string(), "previous_response_id");
    }
}
