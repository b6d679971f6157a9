"""The pictures people upload are not CIFAR's: the CIFAR-10-C corruptions (Hendrycks & Dietterich 2019), made here
from the formulas and the five severities of the authors' make_cifar_c.py (hendrycks/robustness), since the data set
itself cannot be downloaded here. Our own code: vectorised over a batch, seeded, with the same parameters and the
same order of operations, and, as there, the result truncated to uint8.

Three of the benchmark's fifteen cannot be made here and are named, not faked: motion blur and snow use ImageMagick's
motion blur (through Wand), frost blends the authors' own photographs of frost.

Severity 0 is the identity (our convention: the clean picture, the first point of every curve).
"""

import io

import cv2
import numpy as np
import PIL.Image
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from scipy.ndimage import gaussian_filter, map_coordinates, zoom

SEVERITIES = (1, 2, 3, 4, 5)
# The benchmark's fifteen, in the paper's order, and the four extra the authors published beside them.
BENCHMARK = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
             "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression")
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
MISSING = {"motion_blur": "needs ImageMagick's motion blur (Wand), which nothing here reproduces exactly",
           "snow": "needs ImageMagick's motion blur (Wand) for the falling snow",
           "frost": "blends the authors' photographs of frost, which are not here"}


def _blur(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """skimage.filters.gaussian of each (N, H, W, C) picture, channels apart (the authors' multichannel=True)."""
    return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode=mode, truncate=truncate)


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """The centre of each (N, H, W, C) picture zoomed by `factor` (linear) and cropped back to H x W."""
    h = x.shape[1]
    crop = int(np.ceil(h / factor))
    top = (h - crop) // 2
    zoomed = zoom(x[:, top:top + crop, top:top + crop], (1, factor, factor, 1), order=1)
    trim = (zoomed.shape[1] - h) // 2
    return zoomed[:, trim:trim + h, trim:trim + h]


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    side = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
    ksize = (3, 3) if radius <= 8 else (5, 5)
    xs, ys = np.meshgrid(side, side)
    disk = np.array((xs ** 2 + ys ** 2) <= radius ** 2, dtype=np.float32)
    return cv2.GaussianBlur(disk / disk.sum(), ksize=ksize, sigmaX=alias_blur)


def _plasma_fractal(rng, mapsize: int = 32, wibbledecay: float = 3) -> np.ndarray:
    """The diamond-square height map of the authors' fog, in [0, 1]."""
    heights = np.empty((mapsize, mapsize))
    heights[0, 0] = 0
    step, wibble = mapsize, 100

    def wibbled_mean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while step >= 2:
        corners = heights[0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, -1, axis=0)
        squares += np.roll(squares, -1, axis=1)
        heights[step // 2:mapsize:step, step // 2:mapsize:step] = wibbled_mean(squares)
        centres = heights[step // 2:mapsize:step, step // 2:mapsize:step]
        corners = heights[0:mapsize:step, 0:mapsize:step]
        heights[0:mapsize:step, step // 2:mapsize:step] = wibbled_mean(
            centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1))
        heights[step // 2:mapsize:step, 0:mapsize:step] = wibbled_mean(
            centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0))
        step //= 2
        wibble /= wibbledecay
    heights -= heights.min()
    return heights / heights.max()


# Each corruption: (N, 32, 32, 3) floats in [0, 1] (uint8 for the few that work on pictures), severity, rng ->
# floats in [0, 255]. The parameters are the authors', severity 1 to 5.
def gaussian_noise(x, severity, rng):
    c = [0.04, 0.06, .08, .09, .10][severity - 1]
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x, severity, rng):
    c = [500, 250, 100, 75, 50][severity - 1]
    return np.clip(rng.poisson(x * c) / c, 0, 1) * 255


def impulse_noise(x, severity, rng):
    """skimage's random_noise(mode="s&p"): each value flipped with probability c, to 0 or 1 with equal odds."""
    c = [.01, .02, .03, .05, .07][severity - 1]
    flipped, salt = rng.random(x.shape) <= c, rng.random(x.shape) <= 0.5
    x = x.copy()
    x[flipped & salt], x[flipped & ~salt] = 1, 0
    return np.clip(x, 0, 1) * 255


def speckle_noise(x, severity, rng):
    c = [.06, .1, .12, .16, .2][severity - 1]
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255


def gaussian_blur(x, severity, rng):
    c = [.4, .6, 0.7, .8, 1][severity - 1]
    return np.clip(_blur(x, c), 0, 1) * 255


def glass_blur(x, severity, rng):
    sigma, max_delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    x = np.uint8(_blur(x, sigma) * 255)
    positions = range(32 - max_delta, max_delta, -1)  # bottom-right to top-left, as the authors' loop
    for picture in x:
        # The authors' randint(-1, 1): -1 or 0, a neighbour above or to the left, or the pixel itself.
        offsets = rng.integers(-max_delta, max_delta, size=(iterations, len(positions), len(positions), 2))
        for step in offsets:
            for i, h in enumerate(positions):
                for j, w in enumerate(positions):
                    dx, dy = step[i, j]
                    # Their "swap" assigns one view to another: the pixel takes its neighbour's value, which keeps
                    # its own. Kept as written: it is what CIFAR-10-C holds.
                    picture[h, w] = picture[h + dy, w + dx]
    return np.clip(_blur(x / 255, sigma), 0, 1) * 255


def defocus_blur(x, severity, rng):
    radius, alias_blur = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    kernel = _disk(radius, alias_blur)
    blurred = np.stack([np.stack([cv2.filter2D(picture[:, :, d], -1, kernel) for d in range(3)], -1)
                        for picture in x.astype(np.float64)])
    return np.clip(blurred, 0, 1) * 255


def zoom_blur(x, severity, rng):
    factors = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
               np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][severity - 1]
    x = x.astype(np.float32)
    out = np.zeros_like(x)
    for factor in factors:
        out += _clipped_zoom(x, factor)
    return np.clip((x + out) / (len(factors) + 1), 0, 1) * 255


def fog(x, severity, rng):
    strength, decay = [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    out = []
    for picture in x:
        top = picture.max()
        fogged = picture + strength * _plasma_fractal(rng, wibbledecay=decay)[:32, :32][..., None]
        out.append(np.clip(fogged * top / (top + strength), 0, 1) * 255)
    return np.stack(out)


def brightness(x, severity, rng):
    c = [.05, .1, .15, .2, .3][severity - 1]
    hsv = rgb_to_hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


def saturate(x, severity, rng):
    scale, shift = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    hsv = rgb_to_hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + shift, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


def contrast(x, severity, rng):
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    means = x.mean((1, 2), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def elastic_transform(x, severity, rng):
    size = 32
    alpha, sigma, affine = [(size * 0, size * 0, size * 0.08), (size * 0.05, size * 0.2, size * 0.07),
                            (size * 0.08, size * 0.06, size * 0.06), (size * 0.1, size * 0.04, size * 0.05),
                            (size * 0.1, size * 0.03, size * 0.03)][severity - 1]
    centre, square = np.float32((size, size)) // 2, size // 3
    corners = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    ys, xs, zs = np.meshgrid(np.arange(size), np.arange(size), np.arange(3), indexing="ij")
    out = []
    for picture in x.astype(np.float32):
        moved = corners + rng.uniform(-affine, affine, size=corners.shape).astype(np.float32)
        picture = cv2.warpAffine(picture, cv2.getAffineTransform(corners, moved), (size, size),
                                 borderMode=cv2.BORDER_REFLECT_101)
        dx, dy = ((gaussian_filter(rng.uniform(-1, 1, size=(size, size)), sigma, mode="reflect", truncate=3) * alpha)
                  .astype(np.float32)[..., None] for _ in range(2))
        indices = (ys + dy).reshape(-1, 1), (xs + dx).reshape(-1, 1), zs.reshape(-1, 1)
        warped = map_coordinates(picture, indices, order=1, mode="reflect").reshape(picture.shape)
        out.append(np.clip(warped, 0, 1) * 255)
    return np.stack(out)


def pixelate(x, severity, rng):
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    small = (int(32 * c), int(32 * c))
    return np.stack([np.asarray(PIL.Image.fromarray(picture).resize(small, PIL.Image.BOX)
                                .resize((32, 32), PIL.Image.BOX)) for picture in x])


def jpeg_compression(x, severity, rng):
    quality = [80, 65, 58, 50, 40][severity - 1]
    out = []
    for picture in x:
        buffer = io.BytesIO()
        PIL.Image.fromarray(picture).save(buffer, "JPEG", quality=quality)
        out.append(np.asarray(PIL.Image.open(buffer)))
    return np.stack(out)


def spatter(x, severity, rng):
    c = [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
         (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)][severity - 1]
    return np.stack([_spatter_one(picture, c, rng) for picture in x.astype(np.float32)])


def _spatter_one(x, c, rng):
    liquid = gaussian_filter(rng.normal(size=x.shape[:2], loc=c[0], scale=c[1]), c[2], mode="nearest", truncate=4.0)
    liquid[liquid < c[3]] = 0
    if c[5] == 0:  # water: pale turquoise drops with their edges
        liquid = (liquid * 255).astype(np.uint8)
        dist = cv2.distanceTransform(255 - cv2.Canny(liquid, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = cv2.cvtColor(liquid * dist, cv2.COLOR_GRAY2BGRA)
        m /= np.max(m, axis=(0, 1))
        m *= c[4]
        colour = np.concatenate([value / 255. * np.ones_like(m[..., :1]) for value in (175, 238, 238)], axis=2)
        colour = cv2.cvtColor(colour, cv2.COLOR_BGR2BGRA)
        x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
        return cv2.cvtColor(np.clip(x + m * colour, 0, 1), cv2.COLOR_BGRA2BGR) * 255
    m = gaussian_filter(np.where(liquid > c[3], 1, 0).astype(np.float32), c[4], mode="nearest", truncate=4.0)
    m[m < 0.8] = 0  # mud: brown blots
    colour = np.concatenate([value / 255. * np.ones_like(x[..., :1]) for value in (63, 42, 20)], axis=2)
    return np.clip(x * (1 - m[..., None]) + colour * m[..., None], 0, 1) * 255


ON_PICTURES = ("pixelate", "jpeg_compression")  # these take the uint8 pictures themselves, as PIL images there
CORRUPTIONS = {name: globals()[name] for name in (*BENCHMARK, *EXTRA) if name not in MISSING}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """uint8 (N, 32, 32, 3) pictures with corruption `name` at `severity` (0: unchanged), the same for the same seed."""
    if name not in CORRUPTIONS:
        reason = MISSING.get(name, f"unknown: choose one of {', '.join(CORRUPTIONS)}")
        raise ValueError(f"cannot make {name}: {reason}")
    if severity == 0:
        return images.copy()
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 0 to {SEVERITIES[-1]}, got {severity}")
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(name), severity])
    source = images if name in ON_PICTURES else images / 255.
    return np.uint8(CORRUPTIONS[name](source, severity, rng))  # truncated, as the authors' np.uint8


def every_corruption(images: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The pictures under each of the benchmark's corruptions made here at each severity, stacked, with their labels:
    accuracy on the stack is the benchmark's mean (every corruption and severity weighs the same)."""
    made = [name for name in BENCHMARK if name in CORRUPTIONS]
    stack = [corrupt(images, name, severity, seed) for name in made for severity in SEVERITIES]
    return np.concatenate(stack), np.tile(labels, len(stack))
