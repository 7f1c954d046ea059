import type { ProgressClient } from "../../client/index";
import { useConnectionState } from "../../react/index";

/** Says when live updates are interrupted; silent while the connection is fine. */
export function ConnectionBanner({ client }: { client: ProgressClient }) {
  const state = useConnectionState(client);
  let text: string | null = null;
  let tone = "info";
  if (state === "connecting") text = "Connecting…";
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
      data-testid="connection-banner"
      hidden={text === null}
    >
      {text}
    </div>
  );
}
