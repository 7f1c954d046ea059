import { useId, useState, type DragEvent } from "react";
import { uploadPdf } from "../api";
import { rememberUpload } from "../uploads";

/** PDF upload by drag and drop or file picker (the drop zone is a label: keyboard works). */
export function Upload({ token, onUploaded }: { token: () => string; onUploaded: (jobId: string) => void }) {
  const id = useId();
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);

  async function send(files: FileList | null) {
    const file = files?.[0];
    if (!file) return;
    if (file.type && file.type !== "application/pdf" && !file.name.toLowerCase().endsWith(".pdf")) {
      setMessage({ error: true, text: `${file.name} is not a PDF.` });
      return;
    }
    setBusy(true);
    setMessage({ error: false, text: `Uploading ${file.name}…` });
    try {
      const accepted = await uploadPdf(token(), file);
      rememberUpload(accepted.job_id, { pages: accepted.pages, name: accepted.display_name });
      setMessage({ error: false, text: `${file.name} uploaded.` });
      onUploaded(accepted.job_id);
    } catch (e) {
      setMessage({ error: true, text: `Upload failed: ${e instanceof Error ? e.message : String(e)}` });
    } finally {
      setBusy(false);
    }
  }

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setOver(false);
    void send(event.dataTransfer.files);
  }

  return (
    <section className="card" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Upload a PDF</h2>
      <label
        htmlFor={`${id}-file`}
        className={`drop${over ? " drop--over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
        aria-busy={busy}
      >
        <span>Drop a PDF here, or choose a file</span>
      </label>
      <input
        id={`${id}-file`}
        className="file-input"
        type="file"
        accept="application/pdf,.pdf"
        disabled={busy}
        onChange={(e) => {
          void send(e.target.files);
          e.target.value = "";
        }}
      />
      <p role={message?.error ? "alert" : "status"} className={message?.error ? "error" : "hint"}>
        {message?.text}
      </p>
    </section>
  );
}
