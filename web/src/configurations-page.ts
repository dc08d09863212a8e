/**
 * The admins' configuration editor: every named assistant configuration,
 * a form to create or change one (the server's VALIDATION errors shown at
 * each field), and the actions activate, retire and make default. A page of
 * its own over the chat (overlay-page.ts), opened from the account menu,
 * which offers it to admins only (the server answers members FORBIDDEN anyway).
 */
import { api, type Auth, RequestError } from "./api.js";
import { append, clear, h } from "./dom.js";
import { describe } from "./format.js";
import { openOverlayPage, type OverlayPage } from "./overlay-page.js";
import type { AssistantConfiguration, ConfigurationSettings } from "./protocol.js";

type Field = keyof ConfigurationSettings;

/** Inputs of the form; `hint` restates the server's bounds (sql/019 and src/protocol/configuration-schemas.ts decide). */
const FIELDS: { field: Field; label: string; kind: "text" | "textarea" | "number" | "mode" | "check"; hint?: string; step?: string }[] = [
  { field: "name", label: "Name", kind: "text", hint: "1–80 characters, unique" },
  { field: "description", label: "Description", kind: "text", hint: "up to 1000 characters" },
  { field: "systemPrompt", label: "System prompt", kind: "textarea", hint: "up to 8000 characters" },
  { field: "model", label: "Model", kind: "text", hint: "empty: the server's LLM_MODEL" },
  { field: "temperature", label: "Temperature", kind: "number", hint: "0–2", step: "0.05" },
  { field: "maxTokens", label: "Max tokens", kind: "number", hint: "16–32768", step: "1" },
  { field: "topK", label: "Top-k", kind: "number", hint: "1–50 retrieved messages", step: "1" },
  { field: "similarityThreshold", label: "Similarity threshold", kind: "number", hint: "0–1", step: "0.01" },
  { field: "historyWindow", label: "History window", kind: "number", hint: "0–100 recent messages", step: "1" },
  { field: "contextTokenBudget", label: "Context budget", kind: "number", hint: "200–200000 tokens", step: "1" },
  { field: "retrievalMode", label: "Retrieval", kind: "mode" },
  { field: "crossSession", label: "Memory across the user's sessions", kind: "check" },
];
const MODES = ["hybrid", "vector", "lexical", "none"] as const;

export function openConfigurationsPage(auth: Auth, toast: (message: string) => void): void {
  new ConfigurationsPage(auth, toast, openOverlayPage("configurations-page", "Assistant configurations"));
}

class ConfigurationsPage {
  private readonly list: HTMLUListElement;
  private readonly form: HTMLFormElement;
  private readonly formTitle: HTMLHeadingElement;
  private readonly formError: HTMLParagraphElement;
  private readonly inputs = new Map<Field, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>();
  private readonly errors = new Map<Field, HTMLElement>();
  private configurations: AssistantConfiguration[] = [];
  /** The configuration being edited; undefined: a new one. */
  private editing: AssistantConfiguration | undefined;

  constructor(
    private readonly auth: Auth,
    private readonly toast: (message: string) => void,
    private readonly page: OverlayPage,
  ) {
    this.list = h("ul", { class: "config-list", "aria-label": "Configurations" });
    this.formTitle = h("h3", { id: "config-form-title" });
    this.formError = h("p", { class: "form-error", role: "alert", "data-testid": "config-form-error" });
    const rows = FIELDS.map((f) => this.row(f));
    this.form = h(
      "form",
      { class: "config-form", novalidate: true, "aria-labelledby": "config-form-title", onsubmit: (e: Event) => (e.preventDefault(), void this.save()) },
      this.formTitle,
      ...rows,
      this.formError,
      h(
        "div",
        { class: "config-form-actions" },
        h("button", { type: "submit", class: "btn btn-primary", "data-testid": "config-save" }, "Save"),
        h("button", { type: "button", class: "btn btn-ghost", onclick: () => this.edit(undefined) }, "New configuration"),
      ),
    );
    page.el.dataset.testid = "configurations-page";
    page.body.append(
      h("p", { class: "muted" }, "Sessions use the default unless their owner picks another. Changes apply from each session's next reply; retiring a configuration moves its sessions to the default."),
      h("div", { class: "admin-page-body" }, h("section", { "aria-label": "All configurations" }, this.list), this.form),
    );
    this.edit(undefined);
    void this.load();
  }

  private row(f: (typeof FIELDS)[number]): HTMLElement {
    const id = `config-${f.field}`;
    let input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;
    if (f.kind === "textarea") input = h("textarea", { id, rows: 4 });
    else if (f.kind === "mode") input = h("select", { id }, ...MODES.map((m) => h("option", { value: m }, m === "none" ? "none (no retrieval)" : m)));
    else if (f.kind === "check") input = h("input", { id, type: "checkbox" });
    else input = h("input", { id, type: f.kind === "number" ? "number" : "text", ...(f.step ? { step: f.step } : {}), autocomplete: "off" });
    input.setAttribute("aria-describedby", `${id}-error`);
    this.inputs.set(f.field, input);
    const error = h("span", { id: `${id}-error`, class: "field-error", "data-field": f.field });
    this.errors.set(f.field, error);
    return h(
      "div",
      { class: `config-row config-row-${f.kind}` },
      h("label", { for: id }, f.label, f.hint ? h("span", { class: "hint" }, ` (${f.hint})`) : null),
      input,
      error,
    );
  }

  private async load(): Promise<void> {
    try {
      this.configurations = await api.adminConfigurations(this.auth.token);
    } catch (err) {
      this.toast(`Could not load the configurations: ${describe(err)}`);
    }
    this.renderList();
  }

  private renderList(): void {
    clear(this.list);
    for (const c of this.configurations) {
      const badges = [c.isDefault ? h("span", { class: "badge badge-default" }, "Default") : null, c.active ? null : h("span", { class: "badge badge-retired" }, "Retired")];
      const actions = h("div", { class: "config-actions" }, h("button", { type: "button", class: "chip", "data-action": "edit", onclick: () => this.edit(c) }, "Edit"));
      if (c.active && !c.isDefault) {
        append(actions, h("button", { type: "button", class: "chip", "data-action": "default", onclick: () => void this.act(c, "default") }, "Make default"));
        append(actions, h("button", { type: "button", class: "chip", "data-action": "retire", onclick: () => void this.act(c, "retire") }, "Retire"));
      }
      if (!c.active) append(actions, h("button", { type: "button", class: "chip", "data-action": "activate", onclick: () => void this.act(c, "activate") }, "Activate"));
      append(
        this.list,
        h(
          "li",
          { class: `config-item${c.active ? "" : " retired"}${this.editing?.id === c.id ? " editing" : ""}`, "data-config": c.name },
          h("div", { class: "config-item-head" }, h("strong", {}, c.name), ...badges),
          h("p", { class: "muted" }, c.description || "No description."),
          h("p", { class: "config-facts" }, `${c.model ?? "server model"} · temperature ${c.temperature} · top-k ${c.topK} · ${c.retrievalMode}${c.crossSession ? " · cross-session" : ""}`),
          actions,
        ),
      );
    }
  }

  private edit(c: AssistantConfiguration | undefined): void {
    this.editing = c;
    this.formTitle.textContent = c ? `Edit “${c.name}”` : "New configuration";
    const values: Record<Field, unknown> = c ?? {
      name: "", description: "", systemPrompt: "", model: null, temperature: 0.7, maxTokens: 512, topK: 8,
      similarityThreshold: 0.3, historyWindow: 12, contextTokenBudget: 2000, retrievalMode: "hybrid", crossSession: true,
    };
    for (const [field, input] of this.inputs) {
      const v = values[field];
      if (input instanceof HTMLInputElement && input.type === "checkbox") input.checked = v === true;
      else input.value = v === null || v === undefined ? "" : String(v);
    }
    this.showErrors([]);
    this.renderList();
  }

  private settings(): ConfigurationSettings {
    const out: Record<string, unknown> = {};
    for (const f of FIELDS) {
      const input = this.inputs.get(f.field)!;
      if (f.kind === "check") out[f.field] = (input as HTMLInputElement).checked;
      else if (f.kind === "number") out[f.field] = input.value.trim() === "" ? Number.NaN : Number(input.value);
      else if (f.field === "model") out[f.field] = input.value.trim() === "" ? null : input.value.trim();
      else out[f.field] = input.value;
    }
    // An empty number box is an error to show, not a default to slip in: NaN goes as null.
    for (const [k, v] of Object.entries(out)) if (typeof v === "number" && Number.isNaN(v)) out[k] = null;
    return out as ConfigurationSettings;
  }

  private async save(): Promise<void> {
    this.showErrors([]);
    try {
      const saved = await api.saveConfiguration(this.auth.token, this.settings(), this.editing?.id);
      this.toast(this.editing ? `Saved “${saved.name}”.` : `Created “${saved.name}”.`);
      await this.load();
      this.edit(this.configurations.find((c) => c.id === saved.id));
    } catch (err) {
      if (err instanceof RequestError && err.code === "VALIDATION" && err.issues) this.showErrors(err.issues);
      else this.formError.textContent = `Could not save: ${describe(err)}`;
    }
  }

  private showErrors(issues: { field: string; message: string }[]): void {
    this.formError.textContent = issues.length ? "Please correct the fields marked below." : "";
    for (const [field, el] of this.errors) {
      const issue = issues.find((i) => i.field === field);
      el.textContent = issue?.message ?? "";
      this.inputs.get(field)!.setAttribute("aria-invalid", String(issue !== undefined));
    }
    const unplaced = issues.filter((i) => !this.errors.has(i.field as Field));
    if (unplaced.length) this.formError.textContent = unplaced.map((i) => i.message).join("; ");
    this.page.el.querySelector<HTMLElement>("[aria-invalid=true]")?.focus();
  }

  private async act(c: AssistantConfiguration, action: "activate" | "retire" | "default"): Promise<void> {
    if (action === "retire" && !window.confirm(`Retire “${c.name}”? Sessions using it switch to the default from their next reply.`)) return;
    try {
      await api.configurationAction(this.auth.token, c.id, action);
      this.toast(action === "default" ? `“${c.name}” is the default now.` : action === "retire" ? `Retired “${c.name}”.` : `Activated “${c.name}”.`);
      await this.load();
      if (this.editing?.id === c.id) this.edit(this.configurations.find((x) => x.id === c.id));
    } catch (err) {
      this.toast(`Could not ${action === "default" ? "make it the default" : action} : ${describe(err)}`.replace(" :", ":"));
    }
  }
}
