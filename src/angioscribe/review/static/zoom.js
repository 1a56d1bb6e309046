// Click an image to see it at full size (scroll to pan); click again to fit it back.
document.addEventListener("click", (event) => {
  const image = event.target.closest("img.zoomable");
  if (image) image.classList.toggle("zoomed");
});
