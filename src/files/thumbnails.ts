/**
 * Thumbnails of image attachments: a WebP that fits in THUMB_EDGE pixels
 * (first frame of an animation), made with sharp (libvips; its prebuilt
 * binaries install from npm as @img/* packages). Decoding is bounded: an
 * image of more than MAX_PIXELS pixels (a decompression bomb) gets none.
 */
import { PassThrough, type Readable } from "node:stream";
import sharp from "sharp";

export const THUMB_EDGE = 320;
const MAX_PIXELS = 50_000_000;

export interface Thumbnail {
  data: Buffer;
  width: number;
  height: number;
}

/** Reads the image stream and answers its thumbnail and the original's size. */
export async function makeThumbnail(image: Readable): Promise<{ thumb: Thumbnail; width: number; height: number }> {
  const decoder = sharp({ limitInputPixels: MAX_PIXELS, failOn: "error", animated: false });
  const meta = decoder.clone().metadata();
  const out = decoder
    .clone()
    .rotate()
    .resize(THUMB_EDGE, THUMB_EDGE, { fit: "inside", withoutEnlargement: true })
    .webp({ quality: 75 })
    .toBuffer({ resolveWithObject: true });
  image.pipe(new PassThrough()).pipe(decoder);
  const [m, t] = await Promise.all([meta, out]);
  return { thumb: { data: t.data, width: t.info.width, height: t.info.height }, width: m.width ?? t.info.width, height: m.height ?? t.info.height };
}
