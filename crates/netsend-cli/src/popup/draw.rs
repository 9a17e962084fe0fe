//! Drawing the popup window from its [`App`] state: a title line, the
//! message list or one message or the draft, the status line and a key
//! line. It places only text the state already sanitised.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Field, Mode, Row};

/// The key line of the list.
const LIST_KEYS: &str = "Enter open  r reply  n new  d delete  q quit  ? help";
/// The key line of a message's view.
const VIEW_KEYS: &str = "r reply  n new  d delete  Up/Down scroll  Esc back  ? help";
/// The key line while writing.
const COMPOSE_KEYS: &str = "Enter next/send  Tab complete name  Ctrl-J new line  Esc cancel";
/// The key line of the delete question.
const CONFIRM_KEYS: &str = "y delete  any other key keeps it";
/// The help line `?` shows above it.
const HELP: &str = "Up/Down/PgUp/PgDn/Home/End move or scroll, Esc back (in the list: quit), Tab completes a name, Ctrl-J breaks a line, Ctrl-C quits";

/// Draws the whole window.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App) {
    let help_height = u16::from(app.help);
    let [title, body, help, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(help_height),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new(app.title()).style(Style::new().add_modifier(Modifier::REVERSED)),
        title,
    );
    match &app.mode {
        Mode::List | Mode::ConfirmDelete { .. } => list(frame, body, app),
        Mode::View { id, scroll } => {
            let lines: Vec<Line<'_>> = app.view_lines(*id).into_iter().map(Line::from).collect();
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .scroll((*scroll, 0)),
                body,
            );
        }
        Mode::Compose { draft, .. } => {
            let heading = if draft.reply_to.is_some() {
                "Reply"
            } else {
                "New message"
            };
            let mut lines = vec![
                Line::from(Span::styled(
                    heading,
                    Style::new().add_modifier(Modifier::BOLD),
                )),
                Line::from(format!("To:   {}", draft.to)),
                Line::from("Text:"),
            ];
            lines.extend(draft.text.split('\n').map(|l| Line::from(l.to_owned())));
            let text_lines = u16::try_from(draft.text.split('\n').count()).unwrap_or(u16::MAX);
            let last_len = draft
                .text
                .rsplit('\n')
                .next()
                .map_or(0, |l| l.chars().count());
            frame.render_widget(Paragraph::new(lines), body);
            let (x, y) = match draft.field {
                Field::To => (6 + draft.to.chars().count(), 1),
                Field::Text => (last_len, 2 + usize::from(text_lines)),
            };
            let x = body.x.saturating_add(u16::try_from(x).unwrap_or(u16::MAX));
            let y = body.y.saturating_add(u16::try_from(y).unwrap_or(u16::MAX));
            if x < body.right() && y < body.bottom() {
                frame.set_cursor_position(Position::new(x, y));
            }
        }
    }
    if app.help {
        frame.render_widget(Paragraph::new(HELP), help);
    }
    frame.render_widget(Paragraph::new(app.status_line()), status);
    let key_line = match app.mode {
        Mode::List => LIST_KEYS,
        Mode::View { .. } => VIEW_KEYS,
        Mode::Compose { .. } => COMPOSE_KEYS,
        Mode::ConfirmDelete { .. } => CONFIRM_KEYS,
    };
    frame.render_widget(
        Paragraph::new(key_line).style(Style::new().add_modifier(Modifier::REVERSED)),
        keys,
    );
}

/// The message list, newest at the bottom, the selected row highlighted.
fn list(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let (rows, selected) = app.rows();
    if rows.is_empty() {
        frame.render_widget(Paragraph::new("There are no messages."), area);
        return;
    }
    let items: Vec<ListItem<'_>> = rows.iter().map(|r| ListItem::new(row_line(r))).collect();
    let mut state = ListState::default().with_selected(selected);
    frame.render_stateful_widget(
        List::new(items).highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
        &mut state,
    );
}

/// One list row: unread mark, id, time, sender, alias, state, first line.
fn row_line(r: &Row) -> Line<'static> {
    let style = if r.unread {
        Style::new().add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    Line::from(vec![Span::styled(
        format!(
            "{} {:>5}  {}  {:<15} -> {:<15} {:<5}  {}",
            if r.unread { '*' } else { ' ' },
            r.id,
            r.time,
            r.from,
            r.to,
            r.state,
            r.text
        ),
        style,
    )])
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::popup::app::tests::message;
    use crate::popup::app::{Event, Key};

    fn screen(app: &App) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(100, 12)).unwrap();
        terminal.draw(|f| draw(f, app)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn an_escape_laden_message_draws_no_control_character() {
        let mut app = App::new(None, |_| "12:00".into());
        let mut evil = message(
            7,
            "MAL\x1b]0;pwned\x07LORY",
            "hello \x1b[31mred\x1b[0m\u{9b}2J\r\nline two",
        );
        evil.received_at = 0;
        app.handle(Event::Messages {
            initial: true,
            messages: vec![evil],
        });
        let list = screen(&app);
        assert!(list[1].contains("*     7  12:00  MALLORY"), "{list:#?}");
        assert!(list[1].contains("hello red"), "{list:#?}");
        app.handle(Event::Key(Key::Enter));
        let view = screen(&app);
        assert!(view.iter().any(|l| l.starts_with("line two")), "{view:#?}");
        for line in list.iter().chain(&view) {
            assert!(!line.chars().any(char::is_control), "{line:?}");
            assert!(!line.contains("pwned"), "{line:?}");
        }
    }
}
