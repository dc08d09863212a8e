/**
 * A reader's rating of a reply: good, okay (neutral) or bad, and an optional
 * comment. The buttons show the reader's own rating, also after a reload
 * (history carries it as ownFeedback).
 */
import { append, h, icon } from "./dom.js";

export type Rating = 1 | 0 | -1;

export interface FeedbackState {
  rating?: Rating;
  comment?: string | null;
  /** The comment box is open. */
  commenting?: boolean;
}

/** Longest comment the server takes (FEEDBACK_COMMENT_MAX). */
export const COMMENT_MAX = 2000;

const RATINGS: { rating: Rating; action: string; label: string }[] = [
  { rating: 1, action: "up", label: "Good reply" },
  { rating: 0, action: "neutral", label: "Okay reply" },
  { rating: -1, action: "down", label: "Bad reply" },
];

/**
 * The rating chips and, when open, the comment form. `save` stores a rating
 * (with the comment, or the current one when `comment` is undefined);
 * `toggleComment` opens or closes the form.
 */
export function feedbackControls(state: FeedbackState, save: (rating: Rating, comment?: string) => void, toggleComment: () => void): HTMLElement[] {
  const chips = h("span", { class: "feedback", role: "group", "aria-label": "Rate this reply" });
  for (const r of RATINGS) {
    append(
      chips,
      h(
        "button",
        {
          type: "button",
          class: "chip icon-only",
          "data-action": r.action,
          "aria-label": r.label,
          title: r.label,
          "aria-pressed": String(state.rating === r.rating),
          onclick: () => save(r.rating),
        },
        r.rating === 0 ? h("span", { class: "neutral-mark", "aria-hidden": "true" }, "–") : icon(r.rating === 1 ? "up" : "down"),
      ),
    );
  }
  append(
    chips,
    h(
      "button",
      {
        type: "button",
        class: "chip",
        "data-action": "comment",
        "aria-expanded": String(state.commenting === true),
        title: state.comment ? `Your comment: ${state.comment}` : "Add a comment to your rating",
        onclick: toggleComment,
      },
      state.comment ? "Edit comment" : "Comment",
    ),
  );
  if (!state.commenting) return [chips];

  const text = h("textarea", { class: "feedback-comment", rows: 2, maxlength: COMMENT_MAX, placeholder: "What was good or wrong about this reply?", "aria-label": "Comment on this reply" });
  text.value = state.comment ?? "";
  const form = h(
    "form",
    {
      class: "feedback-form",
      "data-testid": "feedback-form",
      onsubmit: (e: Event) => {
        e.preventDefault();
        // A comment needs a rating: neutral unless one was given.
        save(state.rating ?? 0, text.value);
      },
    },
    text,
    h("div", { class: "feedback-form-row" }, h("button", { type: "submit", class: "btn btn-primary" }, "Save"), h("button", { type: "button", class: "btn btn-ghost", onclick: toggleComment }, "Cancel")),
  );
  queueMicrotask(() => text.focus());
  return [chips, form];
}
