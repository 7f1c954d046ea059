import type { ProgressClient } from "../../client/index";
import { useConnectionState, useTransport } from "../../react/index";

/**
 * Says when live updates are interrupted, or come over Server-Sent Events because WebSockets do
 * not get through; silent while a WebSocket connection is fine.
 */
export function ConnectionBanner({ client }: { client: ProgressClient }) {
  const state = useConnectionState(client);
  const transport = useTransport(client);
  let text: string | null = null;
  let tone = "info";
  if (state === "open" && transport === "sse") {
    text = "Live updates over Server-Sent Events: WebSockets do not get through right now.";
  } else if (state === "connecting") text = "Connecting…";
  else if (state === "reconnecting") {
    text = "Reconnecting… live updates resume by themselves.";
    tone = "warn";
  } else if (state === "closed") {
    text = `Disconnected${client.lastError ? `: ${client.lastError.message}` : ""}. Sign in again to resume.`;
    tone = "error";
  }
  return (
    <div
      role="status"
      aria-live="polite"
      className={`banner banner--${tone}`}
      data-state={state}
      data-transport={transport}
      data-testid="connection-banner"
      hidden={text === null}
    >
      {text}
    </div>
  );
}
