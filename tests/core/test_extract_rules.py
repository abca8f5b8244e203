"""Unit tests of the rule extractors on small synthetic pages (shapes seen on real 会社概要 pages)."""

from __future__ import annotations

from hokan.core.extract import extract_profile
from hokan.core.extract.html import flat, visible_text

URL = "https://example.co.jp/company/"


def page(body: str, head: str = "") -> str:
    return f"<html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>"


def values(html: str) -> dict:
    return {k: v.value for k, v in extract_profile(html, url=URL).items()}


def assert_quotes_visible(html: str) -> None:
    text = flat(visible_text(html))
    for name, value in extract_profile(html, url=URL).items():
        if value.extractor in ("table", "dl", "block", "text", "history", "regex"):
            assert value.quote in text, (name, value.quote)
        assert len(value.quote) <= 210, name


TABLE = page(
    """
    <h2>会社概要</h2>
    <table>
      <tr><th>会社名</th><td>株式会社サンプル（英文表記 Sample Inc.）</td></tr>
      <tr><th>代表者</th><td>代表取締役社長　山田 太郎（やまだ たろう）</td></tr>
      <tr><th>本社所在地</th><td>〒150-0002<br>東京都渋谷区渋谷2-1-1 サンプルビル5階<br>TEL 03-1234-5678 / FAX 03-1234-5679</td></tr>
      <tr><th>設立</th><td>1998年（平成10年）4月1日</td></tr>
      <tr><th>資本金</th><td>3,000万円</td></tr>
      <tr><th>従業員数</th><td>120名（2024年4月現在）</td></tr>
      <tr><th>売上高</th><td>15億円（2024年3月期）</td></tr>
      <tr><th>事業内容</th><td>業務用ソフトウェアの開発<br>ITコンサルティング</td></tr>
      <tr><th>法人番号</th><td>6120001271738</td></tr>
      <tr><th>E-mail</th><td>info@sample.co.jp</td></tr>
    </table>
    """
)


def test_it_reads_a_th_td_profile_table():
    got = values(TABLE)
    assert got["name"] == "株式会社サンプル"
    assert got["representative_name"] == "山田 太郎"
    assert got["representative_title"] == "代表取締役社長"
    assert (got["prefecture"], got["city"], got["location"]) == ("東京都", "渋谷区", "渋谷2-1-1 サンプルビル5階")
    assert got["postal_code"] == "150-0002"
    assert got["phone"] == "03-1234-5678"
    assert got["established_year"] == 1998
    assert got["capital"] == 30_000_000
    assert got["employee_count"] == 120
    assert got["revenue"] == 1_500_000_000
    assert got["business_description"] == "業務用ソフトウェアの開発\nITコンサルティング"
    assert got["corporate_number"] == "6120001271738"
    assert got["contact_email"] == "info@sample.co.jp"


def test_it_gives_provenance_with_quotes_from_the_visible_text():
    found = extract_profile(TABLE, url=URL)
    capital = found["capital"]
    assert capital.method == "rule"
    assert capital.source_url == URL
    assert capital.raw == "3,000万円"
    assert capital.quote == "資本金 3,000万円"
    assert capital.extractor == "table"
    assert 0 < capital.confidence <= 1
    assert_quotes_visible(TABLE)


def test_it_reads_dl_lists_and_div_rows():
    dl = page(
        """<dl class="company">
          <div><dt>商号</dt><dd>有限会社テスト工業</dd></div>
          <div><dt>設立年月日</dt><dd>昭和52年6月</dd></div>
          <div><dt>代表</dt><dd>鈴木 一郎</dd></div>
          <div><dt>電話番号</dt><dd>(0173) 29-2204</dd></div>
        </dl>"""
    )
    got = values(dl)
    assert got["name"] == "有限会社テスト工業"
    assert got["established_year"] == 1977
    assert got["representative_name"] == "鈴木 一郎"
    assert "representative_title" not in got
    assert got["phone"] == "0173-29-2204"

    divs = page(
        """<section>
          <div class="info-name">会社名</div><div class="info-value">株式会社ＢＣＤ</div>
          <div class="info-name">資本金</div><div class="info-value">9,990万円</div>
          <div class="info-name">従業員</div><div class="info-value">408名（2020年4月時点）</div>
        </section>"""
    )
    got = values(divs)
    assert got["name"] == "株式会社BCD"
    assert got["capital"] == 99_900_000
    assert got["employee_count"] == 408
    assert_quotes_visible(divs)


def test_it_reads_label_colon_value_lines():
    html = page(
        """<div class="footer"><p>株式会社コロン<br>所在地：〒460-0003 愛知県名古屋市中区錦2-4-3<br>
        TEL：052-211-7710<br>資本金：1,000万円<br>設立：2010年4月<br>代表者：代表取締役 佐藤花子</p></div>"""
    )
    found = extract_profile(html, url=URL)
    assert found["city"].value == "名古屋市中区"
    assert found["phone"].value == "052-211-7710"
    assert found["capital"].value == 10_000_000
    assert found["established_year"].value == 2010
    assert found["representative_name"].value == "佐藤花子"
    assert found["capital"].extractor == "text"
    assert found["capital"].confidence < 0.9
    assert_quotes_visible(html)


def test_it_prefers_json_ld():
    head = """<script type="application/ld+json">{"@context":"https://schema.org","@type":"Organization",
      "name":"株式会社ジェイソン","telephone":"+81-948-24-6315","taxID":"3290805009155",
      "foundingDate":"2018-11","sameAs":["https://www.facebook.com/jsonco","https://x.com/jsonco"],
      "address":{"@type":"PostalAddress","postalCode":"820-0066","addressRegion":"福岡県",
      "addressLocality":"飯塚市","streetAddress":"幸袋781-258"}}</script>"""
    found = extract_profile(page("<p>ようこそ</p>", head), url=URL)
    assert found["name"].value == "株式会社ジェイソン"
    assert found["phone"].value == "0948-24-6315"
    assert found["corporate_number"].value == "3290805009155"
    assert (found["prefecture"].value, found["city"].value, found["location"].value) == ("福岡県", "飯塚市", "幸袋781-258")
    assert found["postal_code"].value == "820-0066"
    assert found["facebook_url"].value == "https://www.facebook.com/jsonco"
    assert found["established_year"].value == 2018
    assert found["phone"].extractor == "jsonld"
    assert '"telephone"' in found["phone"].quote


def test_it_rejects_an_invalid_corporate_number():
    html = page("<table><tr><th>法人番号</th><td>91600030001120</td></tr><tr><th>会社名</th><td>合同会社ナギ</td></tr></table>")
    assert "corporate_number" not in values(html)
    wrong_check_digit = page("<table><tr><th>法人番号</th><td>1120001271738</td></tr></table>")
    assert "corporate_number" not in values(wrong_check_digit)


def test_it_never_takes_fax_as_the_phone():
    html = page("<table><tr><th>FAX</th><td>03-1111-2222</td></tr><tr><th>所在地</th><td>東京都港区芝1-2-3</td></tr></table>")
    assert "phone" not in values(html)
    combined = page("<dl><dt>連絡先</dt><dd>FAX：03-1111-2222 / TEL：03-1111-3333</dd></dl>")
    assert values(combined)["phone"] == "03-1111-3333"
    shared = page("<table><tr><th>TEL/FAX</th><td>0948-24-6315</td></tr></table>")
    assert values(shared)["phone"] == "0948-24-6315"


def test_it_keeps_established_and_founded_apart():
    html = page("<table><tr><th>創業</th><td>1925年</td></tr><tr><th>設立</th><td>1950年3月</td></tr></table>")
    got = values(html)
    assert got["established_year"] == 1950
    assert got["founded_year"] == 1925
    only_founded = page("<table><tr><th>創業</th><td>1925年</td></tr><tr><th>創立</th><td>1930年</td></tr></table>")
    got = values(only_founded)
    assert "established_year" not in got
    assert got["founded_year"] == 1925


def test_it_treats_vague_values_as_missing():
    html = page(
        """<table><tr><th>資本金</th><td>非公開</td></tr><tr><th>従業員数</th><td>お問い合わせください</td></tr>
        <tr><th>代表者</th><td>-</td></tr><tr><th>設立</th><td>詳細はお問い合わせください</td></tr>
        <tr><th>売上高</th><td>非公開</td></tr></table>"""
    )
    got = values(html)
    for name in ("capital", "employee_count", "representative_name", "established_year", "revenue"):
        assert name not in got


def test_it_rejects_implausible_values():
    html = page(
        """<table><tr><th>設立</th><td>2999年1月</td></tr><tr><th>従業員数</th><td>0名</td></tr>
        <tr><th>資本金</th><td>0円</td></tr></table>"""
    )
    got = values(html)
    assert "established_year" not in got and "employee_count" not in got and "capital" not in got


def test_it_picks_the_head_office_among_several_addresses():
    html = page(
        """<table><tr><th>所在地</th><td>
          ［大阪支店］〒530-0001 大阪府大阪市北区梅田1-1-1<br>
          ［本社］〒141-0031 東京都品川区西五反田4-28-13<br>
          ［工場］〒116-0011 東京都荒川区西尾久8-32-4</td></tr></table>"""
    )
    got = values(html)
    assert (got["city"], got["location"], got["postal_code"]) == ("品川区", "西五反田4-28-13", "141-0031")


def test_it_leaves_the_address_out_when_only_branches_are_listed():
    html = page(
        """<table><tr><th>所在地</th><td>[厚木店] 神奈川県厚木市下川入17-1<br>[平塚店] 神奈川県平塚市四之宮2-4-16</td></tr>
        <tr><th>電話</th><td>[厚木店]046-245-3311<br>[平塚店]0463-24-2678</td></tr></table>"""
    )
    got = values(html)
    assert "city" not in got and "prefecture" not in got


def test_it_takes_the_phone_of_the_head_office_row_over_branch_phones():
    html = page(
        """<table><tr><th>本社</th><td>〒100-0005 東京都千代田区丸の内1-6-5<br>TEL:03-6810-0070（代表） FAX:03-3213-6655</td></tr>
        <tr><th>名古屋支店</th><td>〒460-0003 愛知県名古屋市中区錦2-4-3<br>TEL:052-211-7710</td></tr></table>"""
    )
    got = values(html)
    assert got["phone"] == "03-6810-0070"
    assert got["city"] == "千代田区"


def test_it_finds_the_head_office_phone_next_to_a_repeat_of_its_address():
    html = page(
        """<dl><dt>本社</dt><dd>東京都新宿区西新宿3-7-1 新宿パークタワー19階</dd></dl>
        <h2>支店・営業所</h2>
        <dl><dt>東京支店</dt><dd>東京都新宿区西新宿3-7-1 新宿パークタワー19階<br>TEL 03-5339-8051</dd>
        <dt>横浜支店</dt><dd>神奈川県横浜市中区長者町6-96-2<br>TEL 045-250-0690</dd></dl>"""
    )
    assert values(html)["phone"] == "03-5339-8051"


def test_it_does_not_guess_between_different_phones():
    html = page("<p>大阪営業所 TEL 06-1111-2222</p><p>東京営業所 TEL 03-3333-4444</p>")
    assert "phone" not in values(html)


def test_it_takes_the_president_among_officers():
    html = page(
        """<table><tr><th>役員</th><td><table>
          <tr><th>代表取締役会長</th><td>里見 治紀</td></tr>
          <tr><th>代表取締役社長</th><td>杉野 行雄</td></tr>
          <tr><th>取締役</th><td>山下 滋</td></tr></table></td></tr></table>"""
    )
    got = values(html)
    assert got["representative_name"] == "杉野 行雄"
    assert got["representative_title"] == "代表取締役社長"
    officers_text = page("<dl><dt>役員</dt><dd>取締役 古賀 彌奈子<br>代表取締役 小林 道寛<br>監査役 漆山 伸一</dd></dl>")
    assert values(officers_text)["representative_name"] == "小林 道寛"


def test_it_uses_a_title_label_as_the_title():
    html = page("<table><tr><th>代表取締役</th><td>齋藤浩輝</td></tr></table>")
    got = values(html)
    assert (got["representative_title"], got["representative_name"]) == ("代表取締役", "齋藤浩輝")


def test_it_takes_the_first_clean_established_date_only():
    with_history = page("<dl><dt>設立</dt><dd>1990年5月<br>1984年7月 野網設備事務所を設立</dd></dl>")
    assert values(with_history)["established_year"] == 1990
    two_companies = page(
        "<table><tr><th>社名</th><td>ブリクス株式会社 設立 2012年5月1日<br>ブリクスハウス株式会社 設立 1999年10月1日</td></tr></table>"
    )
    got = values(two_companies)
    assert "established_year" not in got
    assert "name" not in got
    mixed = page("<table><tr><th>設立</th><td>創業1950年、設立1965年</td></tr></table>")
    assert "established_year" not in values(mixed)


def test_it_reads_incorporation_from_a_history_list_when_no_row_says_so():
    html = page(
        """<h2>沿革</h2><ul><li><h6>2017年10月</h6><div>法人設立</div></li>
        <li><h6>2018年3月</h6><div>正規代理店に認定</div></li>
        <li><h6>2019年4月</h6><div>子会社株式会社ミニを設立</div></li></ul>"""
    )
    found = extract_profile(html, url=URL)
    assert found["established_year"].value == 2017
    assert found["established_year"].extractor == "history"
    building = page("<dl><dt>1987年</dt><dd>品川区西五反田に第1ビル設立</dd></dl>")
    assert "established_year" not in values(building)


def test_it_reads_amounts_in_thousands_and_wareki_dates():
    html = page(
        """<table><tr><th>資本金</th><td>5,000千円</td></tr><tr><th>会社設立日</th><td>令和6年12月27日</td></tr>
        <tr><th>社員数</th><td>4名</td></tr></table>"""
    )
    got = values(html)
    assert got["capital"] == 5_000_000
    assert got["established_year"] == 2024
    assert got["employee_count"] == 4


def test_it_skips_ambiguous_head_counts_and_revenue_series():
    html = page(
        """<table><tr><th>従業員数</th><td>正社員 30名 パート 20名</td></tr>
        <tr><th>売上高</th><td>2023年3月期 12億円<br>2024年3月期 15億円</td></tr></table>"""
    )
    got = values(html)
    assert "employee_count" not in got and "revenue" not in got


def test_it_ignores_menus_of_label_words():
    html = page(
        """<ul class="nav"><li><a href="/company">会社概要</a></li><li><a href="/service">事業内容</a></li>
        <li><a href="/recruit">採用情報</a></li></ul><div><span>代表</span> <span>挨拶</span></div>"""
    )
    assert values(html) == {}


def test_it_reads_legacy_uppercase_fragments():
    html = """<HTML><BODY><TABLE><TR><TD>■名称</TD><TD></TD><TD>株式会社　新清</TD></TR>
    <TR><TD>■所在地</TD><TD>[本部]</TD><TD>神奈川県小田原市南鴨宮3-12-4</TD></TR>
    <TR><TD></TD><TD></TD><TD>[電話]0465-34-1155</TD></TR>
    <TR><TD>■従業員数</TD><TD></TD><TD>143名（男性：66名）（女性：77名）</TD></TR></TABLE>"""
    got = values(html)
    assert got["name"] == "株式会社新清"
    assert got["city"] == "小田原市"
    assert got["phone"] == "0465-34-1155"
    assert got["employee_count"] == 143


def test_it_reads_website_email_and_facebook_links():
    html = page(
        """<table><tr><th>URL</th><td><a href="https://www.example.co.jp/">公式サイト</a></td></tr></table>
        <footer><a href="mailto:contact@example.co.jp">お問い合わせ</a>
        <a href="https://www.facebook.com/examplejp/"><img alt="Facebook"></a>
        <a href="https://www.facebook.com/sharer/sharer.php?u=x">シェア</a></footer>"""
    )
    got = values(html)
    assert got["website_url"] == "https://www.example.co.jp/"
    assert got["contact_email"] == "contact@example.co.jp"
    assert got["facebook_url"] == "https://www.facebook.com/examplejp"


def test_it_returns_nothing_for_an_empty_or_unrelated_page():
    assert values("") == {}
    assert values(page("<p>本日は晴天なり。</p><script>var tel='03-1234-5678';</script>")) == {}


def test_visible_text_drops_scripts_and_keeps_blocks_apart():
    html = page("<style>p{}</style><p>会社名</p><p>株式会社A<br>B</p><script>x=1</script><noscript>JS</noscript>")
    assert visible_text(html) == "会社名\n株式会社A\nB"


def test_it_drops_directions_from_addresses_and_prefers_the_landline():
    html = page(
        """<table><tr><th>所在地</th><td>〒106-0032 東京都港区六本木1-2-3 六本木ビル8F（最寄駅：六本木駅）<br>
        日比谷線 六本木駅 徒歩3分</td></tr>
        <tr><th>電話番号</th><td>0120-111-222（フリーダイヤル）<br>03-1234-5678</td></tr></table>"""
    )
    got = values(html)
    assert got["location"] == "六本木1-2-3 六本木ビル8F"
    assert got["phone"] == "03-1234-5678"


def test_it_splits_sites_written_with_colons_and_cuts_english_names():
    html = page(
        """<table><tr><th>会社名</th><td>エービーシー株式会社/ABC Corporation</td></tr>
        <tr><th>所在地</th><td>本社：東京都港区芝公園1-2-3<br>大阪支店：大阪府大阪市北区梅田1-1-1</td></tr></table>"""
    )
    got = values(html)
    assert got["name"] == "エービーシー株式会社"
    assert (got["city"], got["location"]) == ("港区", "芝公園1-2-3")
    unlabelled = page("<table><tr><th>所在地</th><td>東京都港区芝公園1-2-3<br>大阪府大阪市北区梅田1-1-1</td></tr></table>")
    found = extract_profile(unlabelled, url=URL)
    assert found["location"].value == "芝公園1-2-3"
    assert found["location"].confidence < 0.8


def test_it_does_not_take_the_company_name_for_its_representative():
    html = page(
        """<div class="company_info"><dl class="flex"><dt>会社名</dt><dd>株式会社munico</dd></dl>
        <dl class="flex"><dt>所在地</dt><dd>〒150-0001 東京都渋谷区神宮前5丁目40-10 METROCA 103</dd></dl>
        <dl class="flex"><dt>設立</dt><dd>2021/2/2</dd></dl>
        <dl class="flex"><dt>代表者</dt><dd>munico（nao,kiyo）</dd></dl></div>"""
    )
    got = values(html)
    assert "representative_name" not in got
    assert got["established_year"] == 2021
    assert got["location"] == "神宮前5丁目40-10 METROCA 103"


def test_it_reads_only_the_main_table_of_a_group_company_list():
    html = page(
        """<h2>会社概要</h2><table><tr><th>会社名</th><td>株式会社親会社</td></tr>
        <tr><th>所在地</th><td>東京都港区芝1-1-1</td></tr><tr><th>資本金</th><td>1億円</td></tr>
        <tr><th>代表者</th><td>代表取締役 親田 太郎</td></tr></table>
        <h2>グループ会社</h2><table><tr><th>会社名</th><td>株式会社子会社</td></tr>
        <tr><th>従業員数</th><td>50名</td></tr><tr><th>電話番号</th><td>06-1234-5678</td></tr>
        <tr><th>設立</th><td>2001年</td></tr></table>"""
    )
    got = values(html)
    assert got["name"] == "株式会社親会社"
    assert got["capital"] == 100_000_000
    assert got["representative_name"] == "親田 太郎"
    assert "employee_count" not in got and "phone" not in got and "established_year" not in got


def test_it_reads_labels_glued_to_values_and_skips_header_rows():
    html = page(
        """<div><p><span>設立</span>2001年4月</p><p><span>資本金</span>1,000万円</p>
        <p><span>TEL</span>03-1234-5678</p></div>
        <table><tr><th>会社名</th><th>所在地</th></tr><tr><td>株式会社A</td><td>東京都港区芝1-1-1</td></tr></table>"""
    )
    got = values(html)
    assert got["established_year"] == 2001
    assert got["capital"] == 10_000_000
    assert got["phone"] == "03-1234-5678"
    assert got.get("name") != "所在地"


def test_it_reads_rows_as_large_and_small_companies_write_them():
    html = page(
        """<table>
        <tr><th>社名</th><td>株式会社重錦倖 <span class="en">(Jukin倖 Co., Ltd.)</span></td></tr>
        <tr><th>設立</th><td>1918年（大正07年）09月</td></tr>
        <tr><th>資本金</th><td>344億3,372万円（2019年12月31日現在）</td></tr>
        <tr><th>本社所在地</th><td>〒130-8644 東京都墨田区本所1-3-7<br>TEL：03-3621-6211</td></tr>
        <tr><th>代表者</th><td>代表取締役 社長執行役員　掬川 正純</td></tr>
        <tr><th>従業員数</th><td>連結：7,100名 単体：2,900名</td></tr>
        <tr><th>TEL / FAX</th><td>TEL: 044-433-6399 / FAX: 044-434-8488</td></tr>
        </table>"""
    )
    got = values(html)
    assert got["name"] == "株式会社重錦倖"
    assert got["established_year"] == 1918
    assert got["capital"] == 34_433_720_000
    assert got["representative_name"] == "掬川 正純"
    assert "employee_count" not in got
    assert got["phone"] == "044-433-6399"
    assert got["postal_code"] == "130-8644"


def test_it_ignores_placeholder_values():
    html = page(
        """<table><tr><th>会社名</th><td>株式会社ポスタゴン</td></tr>
        <tr><th>本社所在地</th><td>〒000-0000<br>○○県○○市○○区○○町0-0-0</td></tr>
        <tr><th>電話</th><td>000-0000-0000</td></tr><tr><th>資本金</th><td>●●●万円</td></tr></table>"""
    )
    got = values(html)
    assert got == {"name": "株式会社ポスタゴン"}
