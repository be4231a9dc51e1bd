// kpihub dashboard: progressive enhancement only; every page works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  document.documentElement.classList.add("js");

  // Selects and radios marked data-autosubmit send their form when changed.
  for (const el of document.querySelectorAll("[data-autosubmit]")) {
    el.addEventListener("change", () => el.form && el.form.requestSubmit());
  }

  // Forms marked data-confirm ask first (revoking a client cannot be undone).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // Copy buttons: data-copy="#id" copies that element's text.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (err) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }

  // The chart: data comes from <script type="application/json" id="chart-data">.
  const data = document.getElementById("chart-data");
  const canvas = document.getElementById("chart");
  if (data && canvas && window.Chart) {
    const spec = JSON.parse(data.textContent);
    const chart = new window.Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: [{
          label: spec.label,
          data: spec.values,
          borderColor: "#2563eb",
          backgroundColor: spec.type === "bar" ? "rgba(37, 99, 235, 0.6)" : "rgba(37, 99, 235, 0.15)",
          fill: spec.type === "line",
          spanGaps: true,
          tension: 0.2,
        }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { beginAtZero: true } },
        plugins: { legend: { display: true } },
      },
    });
    canvas.dataset.ready = "true";
    window.kpihubChart = chart;
  }
});
