// The unread badge where the platform has none: Windows shows a small overlay on the taskbar
// button instead of a count (app.setBadgeCount works on macOS and Linux's Unity launchers only).
// Plain data here, so that it is tested without Electron; index.ts makes it a NativeImage.

/** Side of the overlay icon in pixels (Windows draws it at 16 × 16). */
export const OVERLAY_SIZE = 16;

/** A filled red dot, anti-aliased, as raw BGRA pixels (for nativeImage.createFromBitmap). */
export function overlayDot(size = OVERLAY_SIZE): Buffer {
  const pixels = Buffer.alloc(size * size * 4);
  const centre = size / 2;
  const radius = size / 2 - 1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Coverage of this pixel by the disc, from its centre's distance to the disc's edge.
      const distance = Math.hypot(x + 0.5 - centre, y + 0.5 - centre);
      const alpha = Math.round(255 * Math.min(1, Math.max(0, radius - distance + 0.5)));
      const at = (y * size + x) * 4;
      // Premultiplied BGRA: #d93025 scaled by its alpha.
      pixels[at] = Math.round((0x25 * alpha) / 255);
      pixels[at + 1] = Math.round((0x30 * alpha) / 255);
      pixels[at + 2] = Math.round((0xd9 * alpha) / 255);
      pixels[at + 3] = alpha;
    }
  }
  return pixels;
}

/** What the overlay says to a screen reader: nothing when nothing is unread. */
export function overlayDescription(unread: number): string {
  return unread === 0 ? '' : `${unread.toLocaleString('en')} unread message${unread === 1 ? '' : 's'}`;
}
