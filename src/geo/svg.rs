//! Server-rendered SVG overview map of grids. No JavaScript or tile server
//! is needed, which matters on intranet deployments without internet.

use std::fmt::Write;

use super::{Point, Polygon};

/// One clickable polygon on the map. Every string is escaped on output, so
/// user-entered names are safe to pass as they are.
#[derive(Clone, Copy, Debug)]
pub struct MapItem<'a> {
    /// Shape to draw (WGS-84 or any consistent lng/lat datum).
    pub polygon: &'a Polygon,
    /// Text drawn inside the polygon; empty for none.
    pub label: &'a str,
    /// Link target; empty for a non-clickable polygon.
    pub href: &'a str,
    /// Fill colour (any CSS colour); empty to pick from `palette`.
    pub fill: &'a str,
    /// Tooltip text shown on hover.
    pub title: &'a str,
}

const PALETTE: [&str; 12] = [
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#fdd0a2", "#c7e9c0",
    "#dadaeb",
];

/// A light fill colour for the `i`-th polygon; cycles through 12 colours
/// that stay readable under dark label text.
pub fn palette(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders `items` into a standalone `<svg>` element `width` user units
/// wide. Height follows the region's aspect ratio with longitudes shrunk by
/// cos(mid latitude), so grids are not stretched east–west.
pub fn render_svg(items: &[MapItem], width: u32) -> String {
    render_svg_with_tiles(items, width, None)
}

/// Like [`render_svg`], with raster tiles of an intranet XYZ map service (Web Mercator,
/// WGS-84 based such as 天地图; `{z}`, `{x}`, `{y}` in the URL) drawn under the grids.
/// At street scale the map's linear projection and Web Mercator agree to well under a pixel.
pub fn render_svg_with_tiles(items: &[MapItem], width: u32, tile_url: Option<&str>) -> String {
    let width = f64::from(width.max(1));
    let inf = f64::INFINITY;
    let (min, max) = items
        .iter()
        .map(|it| it.polygon.bbox())
        .filter(|(lo, hi)| lo.lng <= hi.lng && lo.lat <= hi.lat)
        .fold((Point::new(inf, inf), Point::new(-inf, -inf)), |(a, b), (lo, hi)| {
            (Point::new(a.lng.min(lo.lng), a.lat.min(lo.lat)), Point::new(b.lng.max(hi.lng), b.lat.max(hi.lat)))
        });
    if min.lng > max.lng {
        let h = 60.0;
        return format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" class="geo-map" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img"><text x="{x}" y="{y}" text-anchor="middle" font-size="14" fill="#888">暂无网格数据</text></svg>"##,
            x = width / 2.0,
            y = h / 2.0 + 5.0,
        );
    }

    let kx = ((min.lat + max.lat) / 2.0).to_radians().cos();
    let span_x = (max.lng - min.lng) * kx;
    let span_y = max.lat - min.lat;
    // Keep a single point or a line drawable instead of dividing by zero.
    let span = span_x.max(span_y).max(1e-9);
    let (span_x, span_y) = (span_x.max(span * 0.05), span_y.max(span * 0.05));
    let pad = (width * 0.02).max(2.0);
    let scale = (width - 2.0 * pad).max(1.0) / span_x;
    let height = (span_y * scale + 2.0 * pad).ceil();
    let font = (width.min(height) / 40.0).clamp(9.0, 18.0);
    let project = |p: Point| (pad + (p.lng - min.lng) * kx * scale, pad + (max.lat - p.lat) * scale);

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="geo-map" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">"#
    );
    if let Some(url) = tile_url {
        push_tiles(&mut out, url, min, max, kx * scale, &project);
    }
    let opacity = if tile_url.is_some() { r#" fill-opacity="0.55""# } else { "" };
    let _ = write!(out, r##"<g class="geo-areas" stroke="#555" stroke-width="1" stroke-linejoin="round"{opacity}>"##);
    for (i, it) in items.iter().enumerate() {
        let mut d = String::new();
        for ring in it.polygon.rings().filter(|r| !r.is_empty()) {
            for (k, &p) in ring.iter().enumerate() {
                let (x, y) = project(p);
                let _ = write!(d, "{}{x:.1} {y:.1}", if k == 0 { "M" } else { " L" });
            }
            d.push_str(" Z");
        }
        if d.is_empty() {
            continue;
        }
        let fill = if it.fill.is_empty() { palette(i) } else { it.fill };
        let path =
            format!(r#"<path d="{d}" fill="{}" fill-rule="evenodd"><title>{}</title></path>"#, escape(fill), escape(it.title));
        if it.href.is_empty() {
            out.push_str(&path);
        } else {
            let _ = write!(out, r#"<a href="{}">{path}</a>"#, escape(it.href));
        }
    }
    out.push_str("</g>");
    // Labels go last so no neighbouring polygon paints over them.
    let _ = write!(
        out,
        r##"<g class="geo-labels" font-size="{font:.1}" text-anchor="middle" dominant-baseline="middle" fill="#222" pointer-events="none">"##
    );
    for it in items.iter().filter(|it| !it.label.is_empty() && !it.polygon.exterior.is_empty()) {
        let (x, y) = project(it.polygon.label_point());
        let _ = write!(out, r#"<text x="{x:.1}" y="{y:.1}">{}</text>"#, escape(it.label));
    }
    out.push_str("</g></svg>");
    out
}

/// Emits `<image>` elements for the XYZ tiles covering the bounding box.
fn push_tiles(out: &mut String, url: &str, min: Point, max: Point, px_per_deg: f64, project: &dyn Fn(Point) -> (f64, f64)) {
    // Pick the zoom whose tiles come out closest to 256 px wide on this map.
    let z = (px_per_deg * 360.0 / 256.0).log2().round().clamp(1.0, 19.0) as i32;
    let n = 2f64.powi(z);
    let tx = |lng: f64| ((lng + 180.0) / 360.0 * n).floor();
    let ty = |lat: f64| {
        let r = lat.to_radians();
        ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor()
    };
    let lng_of = |x: f64| x / n * 360.0 - 180.0;
    let lat_of = |y: f64| (std::f64::consts::PI * (1.0 - 2.0 * y / n)).sinh().atan().to_degrees();
    let (x0, x1, y0, y1) = (tx(min.lng), tx(max.lng), ty(max.lat), ty(min.lat));
    if (x1 - x0 + 1.0) * (y1 - y0 + 1.0) > 400.0 {
        return;
    }
    out.push_str(r#"<g class="geo-tiles">"#);
    let mut y = y0;
    while y <= y1 {
        let mut x = x0;
        while x <= x1 {
            let (ax, ay) = project(Point::new(lng_of(x), lat_of(y)));
            let (bx, by) = project(Point::new(lng_of(x + 1.0), lat_of(y + 1.0)));
            let href = url
                .replace("{z}", &z.to_string())
                .replace("{x}", &(x as i64).to_string())
                .replace("{y}", &(y as i64).to_string());
            let _ = write!(
                out,
                r#"<image href="{}" x="{ax:.1}" y="{ay:.1}" width="{:.1}" height="{:.1}" preserveAspectRatio="none"/>"#,
                escape(&href),
                bx - ax,
                by - ay
            );
            x += 1.0;
        }
        y += 1.0;
    }
    out.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(p: &'a Polygon, label: &'a str, href: &'a str) -> MapItem<'a> {
        MapItem { polygon: p, label, href, fill: "", title: label }
    }

    #[test]
    fn tiles_are_drawn_under_the_grids_only_when_configured() {
        let p = Polygon::rect(108.47, 28.54, 108.52, 28.58);
        let items = [item(&p, "1", "/g/1")];
        assert!(!render_svg(&items, 800).contains("<image"));
        let svg = render_svg_with_tiles(&items, 800, Some("http://tiles.intranet/{z}/{x}/{y}.png?a=1&b=2"));
        let first_image = svg.find("<image").expect("tiles drawn");
        assert!(first_image < svg.find("<path").unwrap(), "tiles lie under the grids");
        assert!(svg.contains("http://tiles.intranet/"));
        assert!(svg.contains("&amp;b=2"), "URL escaped");
        assert!(!svg.contains("{z}"));
        assert!(svg.contains(r#"fill-opacity="0.55""#));
    }

    #[test]
    fn empty_map_says_no_data() {
        let svg = render_svg(&[], 400);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("暂无网格数据"));
        let empty = Polygon::new(Vec::new());
        assert!(render_svg(&[item(&empty, "x", "")], 400).contains("暂无网格数据"));
    }

    #[test]
    fn escapes_all_user_text() {
        let p = Polygon::rect(116.0, 39.0, 116.01, 39.01);
        let it = MapItem {
            polygon: &p,
            label: "A&B <一网格>",
            href: "/grids/1?x=\"1\"&y='2'",
            fill: "red\"><script>",
            title: "</title><script>alert(1)</script>",
        };
        let svg = render_svg(&[it], 300);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains(">A&amp;B &lt;一网格&gt;</text>"));
        assert!(svg.contains(r#"href="/grids/1?x=&quot;1&quot;&amp;y=&#39;2&#39;""#));
        assert!(svg.contains(r#"fill="red&quot;&gt;&lt;script&gt;""#));
        assert!(svg.contains("<title>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
    }

    #[test]
    fn layout_follows_aspect_ratio_and_links() {
        // 0.02° wide at 60°N is as wide on the ground as 0.01° tall.
        let a = Polygon::rect(10.0, 60.0, 10.01, 60.01);
        let b = Polygon::rect(10.01, 60.0, 10.02, 60.01);
        let svg = render_svg(&[item(&a, "甲", "/g/1"), item(&b, "乙", "")], 500);
        assert!(svg.contains(r#"viewBox="0 0 500 "#));
        let h: f64 = svg.split("height=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!((h - 500.0).abs() < 5.0, "height {h}");
        assert_eq!(svg.matches("<path").count(), 2);
        assert_eq!(svg.matches("<a href=\"/g/1\">").count(), 1);
        assert!(svg.contains(palette(0)) && svg.contains(palette(1)));
        assert!(svg.contains("text-anchor=\"middle\""));
        assert!(svg.contains(">甲</text>") && svg.contains(">乙</text>"));
    }

    #[test]
    fn palette_cycles_through_distinct_colours() {
        let all: std::collections::HashSet<_> = (0..12).map(palette).collect();
        assert_eq!(all.len(), 12);
        assert_eq!(palette(12), palette(0));
        assert!(all.iter().all(|c| c.starts_with('#') && c.len() == 7));
    }
}
