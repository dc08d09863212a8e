/**
 * Which assistant configuration a session's turns use. The owner picks one
 * of the active configurations (or the default) and the change applies from
 * the next turn; other members see the name. Everyone in the room hears
 * session:configured.
 */
import { api } from "./api.js";
import type { Connection } from "./connection.js";
import { h } from "./dom.js";
import { describe } from "./format.js";
import type { ConfigurationSummary, Session } from "./protocol.js";

const FOLLOW_DEFAULT = "";

export class ConfigPicker {
  readonly el: HTMLElement;
  private readonly select: HTMLSelectElement;
  private readonly label: HTMLSpanElement;
  private configurations: ConfigurationSummary[] = [];
  private current: number | null;
  private changes = 0;
  private readonly unlisten: () => void;

  constructor(
    private session: Session,
    private readonly d: { conn: Connection; token: string; toast(message: string): void },
  ) {
    this.current = session.configurationId;
    this.select = h("select", { id: `config-picker-${session.id}`, class: "config-select", "data-testid": "config-picker", onchange: () => void this.pick() });
    this.label = h("span", { class: "config-name", "data-testid": "config-name" });
    this.el = h(
      "div",
      { class: "config-picker" },
      h("label", { for: this.select.id, class: "muted" }, "Assistant"),
      session.role === "owner" ? this.select : this.label,
    );
    this.unlisten = d.conn.on("session:configured", (e) => {
      if (e.sessionId !== this.session.id) return;
      this.changes++;
      this.current = e.configurationId;
      if (!this.configurations.some((c) => c.id === e.configuration.id)) this.configurations.push(e.configuration);
      this.render();
    });
    void this.load();
  }

  /** Counts the changes this picker has seen (a pick, session:configured), so an older snapshot does not undo one. */
  get version(): number {
    return this.changes;
  }

  /**
   * The session as the latest join answered it. `since` is `version` when the join was sent:
   * a pick or session:configured that came meanwhile is at least as new as the join's copy.
   */
  update(session: Session, since: number): void {
    this.session = session;
    if (this.changes === since) this.current = session.configurationId;
    this.render();
  }

  dispose(): void {
    this.unlisten();
  }

  private async load(): Promise<void> {
    try {
      this.configurations = await api.configurations(this.d.token);
    } catch (err) {
      this.d.toast(`Could not list the assistant configurations: ${describe(err)}`);
    }
    this.render();
  }

  private render(): void {
    const byId = new Map(this.configurations.map((c) => [c.id, c]));
    const fallback = this.configurations.find((c) => c.isDefault);
    const shown = this.current !== null ? byId.get(this.current) : fallback;
    this.label.textContent = shown ? shown.name : "Default";
    this.label.title = shown?.description ?? "";
    const options = [
      h("option", { value: FOLLOW_DEFAULT }, fallback ? `Default (${fallback.name})` : "Default"),
      ...this.configurations.filter((c) => !c.isDefault || this.current === c.id).map((c) => h("option", { value: String(c.id), title: c.description }, c.name)),
    ];
    this.select.replaceChildren(...options);
    this.select.value = this.current === null ? FOLLOW_DEFAULT : String(this.current);
  }

  private async pick(): Promise<void> {
    const value = this.select.value;
    const configurationId = value === FOLLOW_DEFAULT ? null : Number(value);
    const before = this.current;
    this.changes++;
    this.current = configurationId;
    try {
      const r = await this.d.conn.call("session:configure", { sessionId: this.session.id, configurationId });
      this.current = r.configurationId;
      this.d.toast(`The assistant uses “${r.configuration.name}” from the next reply.`);
    } catch (err) {
      this.current = before;
      this.d.toast(`Could not change the assistant: ${describe(err)}`);
      // Retired meanwhile, perhaps: show the list as it is now.
      void this.load();
    }
    this.render();
  }
}
