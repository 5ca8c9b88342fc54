// The sidebar's section toggles are <summary> elements holding only an icon: give each a
// name that screen readers can say, in the page's language (axe-core: summary-name).
document.addEventListener("DOMContentLoaded", () => {
  const chinese = document.documentElement.lang.startsWith("zh");
  const label = chinese ? "展开或收起本节的页面" : "Show or hide the pages of this section";
  document.querySelectorAll("summary").forEach((summary) => {
    if (!summary.textContent.trim() && !summary.hasAttribute("aria-label")) {
      summary.setAttribute("aria-label", label);
    }
  });
});

// docutils marks the bibliography as role="list" around role="doc-biblioentry" entries,
// which is not a list item (axe-core: aria-required-children): let it be a plain group.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll('.citation-list[role="list"]').forEach((list) => {
    list.removeAttribute("role");
  });
});
