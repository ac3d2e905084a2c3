"""Files whose card number is shown by Word, Excel, PowerPoint or a PDF
viewer in a place intake did not read (docs/POLICY.md §11.1): each builds
the file as the insider would, with a card number nowhere else in it."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import make_files as mf
from intake_support import FILES, rewrite

Parts = dict[str, bytes]
CARD = mf.CARD
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
S = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
A = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
P = 'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'


def _sub(name: str, pattern: bytes, repl: bytes) -> Callable[[Parts], Parts]:
    """Part ``name`` with the first match of ``pattern`` replaced by ``repl``
    (``{}`` in it: the match)."""
    def change(parts: Parts) -> Parts:
        body, n = re.subn(pattern, lambda m: repl.replace(b"{}", m.group()), parts[name],
                          count=1)
        assert n == 1, (name, pattern)
        return {**parts, name: body}
    return change


def _word(xml: str) -> bytes:
    return rewrite(mf.docx(["Canteen hours."]), _sub("word/document.xml", rb"<w:body>",
                                                     b"<w:body>" + xml.encode()))


def _watermark() -> bytes:
    # Design > Watermark: WordArt in the header, its text an attribute.
    shape = ('<w:p><w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" '
             'id="PowerPlusWaterMarkObject" type="#_x0000_t136" fillcolor="silver">'
             f'<v:textpath style="font-family:Calibri" string="Card {CARD}"/></v:shape>'
             "</w:pict></w:r></w:p>")
    return rewrite(mf.docx(["Canteen hours."], header="Office"),
                   _sub("word/header1.xml", rb"<w:hdr[^>]*>", b"{}" + shape.encode()))


def _numbering() -> bytes:
    # The list label drawn before the first item: "Card 4111 ... 1111" (%1 = 1).
    numbering = (f"<w:numbering {W}><w:abstractNum w:abstractNumId=\"0\"><w:lvl w:ilvl=\"0\">"
                 f'<w:start w:val="1"/><w:numFmt w:val="decimal"/>'
                 f'<w:lvlText w:val="Card {CARD[:-1]}%1"/></w:lvl></w:abstractNum>'
                 '<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num></w:numbering>')
    item = ('<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr>'
            "<w:r><w:t>Venue booked.</w:t></w:r></w:p>")
    return rewrite(_word(item), lambda p: {**p, "word/numbering.xml": numbering.encode()})


def _xlsx(change: Callable[[Parts], Parts], cell: str = "<v>1111</v>",
          style: str = "") -> bytes:
    """A one-sheet workbook (openpyxl's) whose B1 is ``cell``, changed."""
    data = mf.xlsx([["Refund to", 1]])
    return rewrite(data, lambda p: change(_sub(
        "xl/worksheets/sheet1.xml", rb'<c r="B1"[^>]*>.*?</c>',
        f'<c r="B1"{style}>{cell}</c>'.encode())(p)))


def _numfmts(cell_code: str, dxf_code: str | None = None, dxf_id: int = 164,
             rule: bool = False) -> Callable[[Parts], Parts]:
    """B1 styled with ``cell_code`` (id 164); a dxf ``dxf_code`` (id
    ``dxf_id``), and a conditional-formatting rule that applies it to B1."""
    def change(p: Parts) -> Parts:
        dxfs = (f'<dxfs count="1"><dxf><numFmt numFmtId="{dxf_id}" formatCode="{dxf_code}"/>'
                "</dxf></dxfs>" if dxf_code else "")
        styles = (f'<styleSheet {S}><numFmts count="1"><numFmt numFmtId="164" '
                  f'formatCode="{cell_code}"/></numFmts><cellXfs count="2"><xf numFmtId="0"/>'
                  f'<xf numFmtId="164" applyNumberFormat="1"/></cellXfs>{dxfs}</styleSheet>')
        p = {**p, "xl/styles.xml": styles.encode()}
        if rule:
            p = _sub("xl/worksheets/sheet1.xml", rb"</sheetData>", (
                b'</sheetData><conditionalFormatting sqref="B1"><cfRule type="expression" '
                b'dxfId="0" priority="1"><formula>TRUE</formula></cfRule>'
                b"</conditionalFormatting>"))(p)
        return p
    return change


def _sheet_after(xml: str) -> Callable[[Parts], Parts]:
    return _sub("xl/worksheets/sheet1.xml", rb"</sheetData>", b"</sheetData>" + xml.encode())


def _added(name: str, xml: str) -> Callable[[Parts], Parts]:
    return lambda p: {**p, name: xml.encode()}


_PPT_BOX = (f"<p:cSld><p:spTree><p:sp><p:txBody><a:bodyPr/><a:p><a:r><a:t>Card {CARD}</a:t>"
            "</a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld>")
_CHARTEX = ('<cx:chartSpace xmlns:cx="http://schemas.microsoft.com/office/drawing/2014/chartex">'
            '<cx:chartData><cx:data id="0"><cx:strDim type="cat"><cx:lvl ptCount="2">'
            f'<cx:pt idx="0">Card {CARD}</cx:pt><cx:pt idx="1">Other</cx:pt></cx:lvl>'
            "</cx:strDim></cx:data></cx:chartData></cx:chartSpace>")


def _slide(body: str, first: str | None = None) -> bytes:
    """A deck whose first slide's empty paragraph is ``body``; its first
    slide numbered ``first``."""
    styled = body.startswith("<a:lstStyle>")  # its own list style
    change = _sub("ppt/slides/slide1.xml", rb"<a:lstStyle/><a:p/>",
                  ("" if styled else "<a:lstStyle/>").encode() + body.encode())
    if first is not None:
        return rewrite(mf.pptx("Canteen hours", "Notes"), _then(change, _sub(
            "ppt/presentation.xml", rb"<p:presentation ",
            f'<p:presentation firstSlideNum="{first}" '.encode())))
    return rewrite(mf.pptx("Canteen hours", "Notes"), change)


def _slide_number(stored: str) -> str:
    return (f'<a:fld id="{{B6F15528-21DE-4FAA-801E-634DDDAF4B2B}}" type="slidenum">'
            f'<a:rPr lang="en-US"/><a:t>{stored}</a:t></a:fld>')


def _bulleted(bullet: str, text: str, style: bool = False) -> str:
    props = f'<a:pPr marL="457200" indent="-457200">{bullet}</a:pPr>'
    if style:  # the text body's list style gives level 1 its bullet
        return (f"<a:lstStyle><a:lvl1pPr>{bullet}</a:lvl1pPr></a:lstStyle>"
                f"<a:p><a:r><a:t>{text}</a:t></a:r></a:p>")
    return f"<a:p>{props}<a:r><a:t>{text}</a:t></a:r></a:p>"


def _outline_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(mf.pdf(["Canteen hours."]))))
    writer.add_outline_item(title="Venue", page_number=0)
    writer.add_outline_item(title=f"Card {CARD}", page_number=0)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _label_info_off(p: Parts) -> Parts:
    # LabelInfo says the Highly Confidential label is off; custom.xml says on.
    return {**p, "docMetadata/LabelInfo.xml": (
        '<clbl:labelList xmlns:clbl="http://schemas.microsoft.com/office/2020/mipLabelMetadata">'
        f'<clbl:label id="{{{mf.HC_ALL}}}" enabled="0" method="Privileged" '
        f'siteId="{{{mf.SITE}}}" removed="0"/></clbl:labelList>').encode()}


def _formatted(code: str, cell: str, attrs: str = "") -> bytes:
    """B1 holding ``cell``, styled with the number format ``code``."""
    return _xlsx(_numfmts(code.replace('"', "&quot;")), cell=cell, style=' s="1"' + attrs)


def _typed(name: str, xml: str, content_type: str) -> Callable[[Parts], Parts]:
    """Part ``name`` added, its content type declared by an Override."""
    return lambda p: {**_sub("[Content_Types].xml", rb"</Types>", (
        f'<Override PartName="/{name}" ContentType="{content_type}"/></Types>').encode())(p),
        name: xml.encode()}


_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"


def _related(source: str, rel_type: str, target: str) -> Callable[[Parts], Parts]:
    """A relationship ``rIdX`` of part ``source`` of type ``rel_type`` to ``target``."""
    folder, _, last = source.rpartition("/")
    rels = f"{folder}/_rels/{last}.rels"
    link = f'<Relationship Id="rIdX" Type="{rel_type}" Target="{target}"/>'

    def change(p: Parts) -> Parts:
        body = p.get(rels, b'<Relationships xmlns="http://schemas.openxmlformats.org/package/'
                           b'2006/relationships"></Relationships>')
        return {**p, rels: body.replace(b"</Relationships>",
                                        link.encode() + b"</Relationships>")}
    return change


def _then(*changes: Callable[[Parts], Parts]) -> Callable[[Parts], Parts]:
    def change(p: Parts) -> Parts:
        for one in changes:
            p = one(p)
        return p
    return change


def _chart_xlsx(change: Callable[[Parts], Parts]) -> bytes:
    """A workbook with a bar chart of two quarters' spend (openpyxl's,
    ``xl/charts/chart1.xml``, its namespace the default one), changed."""
    import openpyxl
    from openpyxl.chart import BarChart, Reference

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in [["Quarter", "Spend"], ["Q1", 10], ["Q2", 20]]:
        ws.append(row)
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=3), titles_from_data=True)
    ws.add_chart(chart, "D2")
    out = io.BytesIO()
    wb.save(out)
    return rewrite(out.getvalue(), change)


_CHART = "xl/charts/chart1.xml"
_OOXML = "application/vnd.openxmlformats-officedocument."
# Insert > Text Box on a chart: a shape of the chart's own drawing (c:userShapes)
_USER_SHAPES = (
    '<c:userShapes xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
    'xmlns:cdr="http://schemas.openxmlformats.org/drawingml/2006/chartDrawing" '
    f'{A}><cdr:relSizeAnchor><cdr:from><cdr:x>0.1</cdr:x><cdr:y>0.1</cdr:y></cdr:from>'
    "<cdr:to><cdr:x>0.9</cdr:x><cdr:y>0.3</cdr:y></cdr:to><cdr:sp macro=\"\" textlink=\"\">"
    '<cdr:nvSpPr><cdr:cNvPr id="2" name="TextBox 1"/><cdr:cNvSpPr txBox="1"/></cdr:nvSpPr>'
    "<cdr:spPr/><cdr:txBody><a:bodyPr/><a:p><a:r><a:t>Card "
    f"{CARD}</a:t></a:r></a:p></cdr:txBody></cdr:sp></cdr:relSizeAnchor></c:userShapes>")


def _user_shapes() -> bytes:
    overlay = "xl/chartOverlays/overlay1.xml"
    return _chart_xlsx(_then(
        _sub(_CHART, rb"</chartSpace>", b'<userShapes xmlns:r="http://schemas.openxmlformats.org/'
             b'officeDocument/2006/relationships" r:id="rIdX"/></chartSpace>'),
        _related(_CHART, _RELS + "chartUserShapes", "../chartOverlays/overlay1.xml"),
        _typed(overlay, _USER_SHAPES, f"{_OOXML}drawingml.chartshapes+xml")))


def _axis_minimum() -> bytes:
    # Format Axis: bounds fixed at 4111111111111111 and ...121, a major
    # unit of 10, numbers "0000 0000 0000 0000": the first tick label is a
    # card number no cell or cache holds.
    return _chart_xlsx(_then(
        _sub(_CHART, rb'<valAx><axId val="100"/><scaling><orientation val="minMax"/>',
             b'{}<max val="4111111111111121"/><min val="4111111111111111"/>'),
        _sub(_CHART, rb'<axPos val="l"/><majorGridlines/>', b'{}<numFmt formatCode='
             b'"0000 0000 0000 0000" sourceLinked="0"/>'),
        _sub(_CHART, rb'<crossAx val="10"/></valAx>',
             b'<crossAx val="10"/><crossBetween val="between"/><majorUnit val="10"/></valAx>')))


def _commented_docx(author: str, initials: str = "JD") -> bytes:
    """A Word document whose one comment is by ``author``."""
    comments = (f'<w:comments {W}><w:comment w:id="0" w:author="{author}" '
                f'w:date="2025-05-12T08:15:00Z" w:initials="{initials}"><w:p><w:r><w:t>'
                "See above.</w:t></w:r></w:p></w:comment></w:comments>")
    body = ('<w:p><w:commentRangeStart w:id="0"/><w:r><w:t>Venue booked.</w:t></w:r>'
            '<w:commentRangeEnd w:id="0"/><w:r><w:commentReference w:id="0"/></w:r></w:p>')
    return rewrite(_word(body), _then(
        _related("word/document.xml", _RELS + "comments", "comments.xml"),
        _typed("word/comments.xml", comments, f"{_OOXML}wordprocessingml.comments+xml")))


def _revised(xml: str) -> bytes:
    """Track Changes on: ``xml`` in a paragraph, by its author."""
    return _word(f"<w:p>{xml}</w:p>")


def _form_field(ff_data: str, kind: str, result: str = "") -> bytes:
    """A legacy form field (Developer > Legacy Tools) of ``ff_data``."""
    return _word(
        f'<w:p><w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="Field1"/>'
        f'<w:enabled/><w:calcOnExit w:val="0"/>{ff_data}</w:ffData></w:fldChar></w:r>'
        f'<w:r><w:instrText xml:space="preserve"> {kind} </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f'{result}<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')


def _control(properties: str, shown: str = "Choose an item.") -> bytes:
    """A content control of ``properties`` showing ``shown``."""
    return _word(f'<w:sdt><w:sdtPr><w:id w:val="7"/>{properties}</w:sdtPr><w:sdtContent><w:p>'
                 f"<w:r><w:t>{shown}</w:t></w:r></w:p></w:sdtContent></w:sdt>")


def _ppt_commented(authors: str, name: str, content_type: str, rel_type: str) -> bytes:
    """A deck whose comment authors part ``name`` is ``authors``."""
    return rewrite(mf.pptx("Project update", "Notes."), _then(
        _related("ppt/presentation.xml", rel_type, name.rpartition("/")[2]),
        _typed(name, authors, content_type)))


def _run(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def _header(xml: str) -> bytes:
    """A Word document whose header's one paragraph is ``xml``."""
    return rewrite(mf.docx(["Canteen hours."], header="Office"), _sub(
        "word/header1.xml", rb"<w:p>.*</w:p>", f"<w:p>{xml}</w:p>".encode()))


def _split(around: Callable[[str], str]) -> str:
    """The card number Word shows whole, its third group ``around``
    something (a tracked insertion, a link, a field, a content control)."""
    return _run(f"Card {CARD[:10]}") + around(_run(CARD[10:14])) + _run(CARD[14:])


_AUTHOR = 'w:id="1" w:author="Bob Clerk" w:date="2025-05-12T08:00:00Z"'


def _split_link(tag: str) -> bytes:
    """A slide whose card number's third group is a link with a ScreenTip
    (Insert > Link > ScreenTip)."""
    def run(text: str, link: str = "") -> str:
        props = f'<a:rPr lang="en-GB">{link}</a:rPr>' if link else '<a:rPr lang="en-GB"/>'
        return f"<a:r>{props}<a:t>{text}</a:t></a:r>"

    runs = run(f"Card {CARD[:10]}") + run(CARD[10:14], (
        f'<a:{tag} r:id="rIdTip" tooltip="Pay here"/>')) + run(CARD[14:])
    return rewrite(mf.pptx("Project update", "Notes."), _then(
        _sub("ppt/slides/slide1.xml", rb"<a:r>(?:(?!</a:r>).)*?Project update</a:t></a:r>",
             runs.encode()),
        _sub("ppt/slides/_rels/slide1.xml.rels", rb"</Relationships>", (
            f'<Relationship Id="rIdTip" Type="{_RELS}hyperlink" '
            'Target="https://pay.example.com/" TargetMode="External"/></Relationships>'
        ).encode())))


def _footnoted(last: str, note: str = " Paid in May.") -> bytes:
    """A paragraph ending ``last`` and a footnote reference, Word's first
    (drawn as a superscript 1), with its footnote: its mark, then ``note``."""
    notes = (f'<w:footnotes {W}><w:footnote w:type="separator" w:id="-1"><w:p><w:r>'
             '<w:separator/></w:r></w:p></w:footnote><w:footnote w:id="1"><w:p><w:r>'
             f'<w:footnoteRef/></w:r><w:r><w:t xml:space="preserve">{note}</w:t></w:r>'
             "</w:p></w:footnote></w:footnotes>")
    return rewrite(_word(f'<w:p>{_run(last)}<w:r><w:footnoteReference w:id="1"/></w:r></w:p>'),
                   _then(_related("word/document.xml", _RELS + "footnotes", "footnotes.xml"),
                         _typed("word/footnotes.xml", notes,
                                f"{_OOXML}wordprocessingml.footnotes+xml")))


def _tracked(xml: str, hidden: bool = False) -> bytes:
    """Track Changes on: ``xml``, paragraphs with changes by their author;
    ``hidden``: the document opens showing none (Review > Simple Markup,
    its insertions and deletions not drawn: w:revisionView w:insDel="0")."""
    data = _word(xml)
    if not hidden:
        return data
    return rewrite(data, _sub("word/settings.xml", rb"<w:settings[^>]*>",
                              b'{}<w:revisionView w:markup="0" w:insDel="0"/>'))


def _deleted(text: str) -> str:
    return (f'<w:del {_AUTHOR}><w:r><w:delText xml:space="preserve">{text}</w:delText>'
            "</w:r></w:del>")


def _mark(kind: str) -> str:
    """A paragraph's properties, its mark tracked as ``kind`` (ins, del)."""
    return f"<w:pPr><w:rPr><w:{kind} {_AUTHOR}/></w:rPr></w:pPr>"


def _field(instruction: str) -> str:
    """A complex field (Ctrl+F9) of ``instruction`` runs, showing "See file"."""
    return ('<w:r><w:fldChar w:fldCharType="begin"/></w:r>' + instruction
            + '<w:r><w:fldChar w:fldCharType="separate"/></w:r>' + _run("See file")
            + '<w:r><w:fldChar w:fldCharType="end"/></w:r>')


def _instr(text: str) -> str:
    return f'<w:r><w:instrText xml:space="preserve">{text}</w:instrText></w:r>'


def _guide(guide: str) -> str:
    """Home > Phonetic Guide: ``guide`` runs over "Paid"."""
    return (f'<w:r><w:ruby><w:rubyPr/><w:rt>{guide}</w:rt><w:rubyBase>{_run("Paid")}'
            "</w:rubyBase></w:ruby></w:r>")


# Insert > Text Box, Layout Options "In Front of Text": anchored where the
# cursor was, drawn apart from the line (DrawingML, or VML as older Word
# and the Fallback write it).
_WPS = ('xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
        'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" ' + A)


def _text_box(paragraphs: str, vml: bool = False) -> str:
    if vml:
        return ('<w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" '
                'style="position:absolute;margin-left:300pt;width:80pt;height:20pt;z-index:1">'
                f"<v:textbox><w:txbxContent>{paragraphs}</w:txbxContent></v:textbox></v:shape>"
                "</w:pict></w:r>")
    return (f'<w:r><w:drawing><wp:anchor {_WPS} simplePos="0" relativeHeight="1" behindDoc="0" '
            'locked="0" layoutInCell="1" allowOverlap="1"><wp:simplePos x="0" y="0"/>'
            '<wp:positionH relativeFrom="page"><wp:posOffset>5000000</wp:posOffset>'
            '</wp:positionH><wp:positionV relativeFrom="page"><wp:posOffset>500000'
            '</wp:posOffset></wp:positionV><wp:extent cx="1000000" cy="300000"/><wp:wrapNone/>'
            '<wp:docPr id="1" name="Text Box 1"/><a:graphic><a:graphicData '
            'uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"><wps:wsp>'
            '<wps:cNvSpPr txBox="1"/><wps:spPr/><wps:txbx><w:txbxContent>' + paragraphs
            + "</w:txbxContent></wps:txbx><wps:bodyPr/></wps:wsp></a:graphicData></a:graphic>"
            "</wp:anchor></w:drawing></w:r>")


_MCE = ('xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml"')


def _both_branches(xml: str) -> str:
    """``xml`` in the Choice and in the Fallback of an mc:AlternateContent."""
    return (f'<mc:AlternateContent {_MCE}><mc:Choice Requires="w14">{xml}</mc:Choice>'
            f"<mc:Fallback>{xml}</mc:Fallback></mc:AlternateContent>")


def _inline_box(paragraphs: str, vml: bool = False) -> str:
    """Insert > Text Box, Layout Options "In Line with Text": drawn in the
    line as a character (DrawingML wp:inline, or VML not positioned)."""
    if vml:
        return ('<w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" '
                'style="width:28pt;height:12pt" stroked="f" filled="f"><v:textbox>'
                f"<w:txbxContent>{paragraphs}</w:txbxContent></v:textbox></v:shape></w:pict></w:r>")
    return (f'<w:r><w:drawing><wp:inline {_WPS}><wp:extent cx="380000" cy="160000"/>'
            '<wp:docPr id="1" name="Text Box 1"/><a:graphic><a:graphicData '
            'uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"><wps:wsp>'
            '<wps:cNvSpPr txBox="1"/><wps:spPr/><wps:txbx><w:txbxContent>' + paragraphs
            + "</w:txbxContent></wps:txbx><wps:bodyPr/></wps:wsp></a:graphicData></a:graphic>"
            "</wp:inline></w:drawing></w:r>")


_UNKNOWN = 'xmlns:x9="urn:example:unknown"'


def _skipped(choice: str, fallback: str | None = None) -> str:
    """An mc:AlternateContent whose Choice requires a namespace no Office
    understands: Word takes its Fallback, or nothing where it has none."""
    tail = "" if fallback is None else f"<mc:Fallback>{fallback}</mc:Fallback>"
    return (f'<mc:AlternateContent {_MCE} {_UNKNOWN}><mc:Choice Requires="x9">{choice}'
            f"</mc:Choice>{tail}</mc:AlternateContent>")


_MCE_A = ('xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
          'xmlns:a14="http://schemas.microsoft.com/office/drawing/2010/main"')


def _drawn_twice() -> str:
    """DrawingML runs of a card number, a group written in both branches
    (PowerPoint or Excel draws one)."""
    def run(text: str) -> str:
        return f"<a:r><a:t>{text}</a:t></a:r>"
    return (run(f"Card {CARD[:10]}") + f'<mc:AlternateContent {_MCE_A}><mc:Choice '
            f'Requires="a14">{run(CARD[10:14])}</mc:Choice><mc:Fallback>{run(CARD[10:14])}'
            f"</mc:Fallback></mc:AlternateContent>{run(CARD[14:])}")


def _fallback_choice_fallback(run: Callable[[str], str], mce: str, known: str) -> str:
    """A card's last three groups in three AlternateContents: the first
    and last a Choice no Office understands (their Fallback taken), the
    middle one a Choice Office does (``known``) taken."""
    def alternate(choice: str, fallback: str, requires: str) -> str:
        return (f'<mc:AlternateContent {mce} {_UNKNOWN}><mc:Choice Requires="{requires}">'
                f"{run(choice)}</mc:Choice><mc:Fallback>{run(fallback)}</mc:Fallback>"
                "</mc:AlternateContent>")
    return (run(f"Card {CARD[:5]}") + alternate("-", CARD[5:9], "x9") + run(" ")
            + alternate(CARD[10:14], "-", known) + run(" ") + alternate("-", CARD[15:], "x9"))


def _boxed_choice(text: str) -> str:
    """An inline text box of ``text`` as Word writes one: a wps Choice,
    a VML rectangle with no text its Fallback."""
    return (f'<mc:AlternateContent {_MCE} xmlns:wps="http://schemas.microsoft.com/office/word/'
            '2010/wordprocessingShape"><mc:Choice Requires="wps">'
            + _inline_box("<w:p>" + _run(text) + "</w:p>") + "</mc:Choice><mc:Fallback><w:r>"
            '<w:pict><v:rect xmlns:v="urn:schemas-microsoft-com:vml" style="width:28pt;'
            'height:12pt"/></w:pict></w:r></mc:Fallback></mc:AlternateContent>')


def _original_view(before: str) -> str:
    """A paragraph ``before`` a card number Word's Original view shows
    whole (its last 1 deleted since, a 9 typed in its place)."""
    return (f"<w:p>{_run(before + CARD[:-1])}<w:ins {_AUTHOR}>{_run('9')}</w:ins>"
            f"{_deleted(CARD[-1])}</w:p>")


# A long paragraph of no ASCII space: minutes in Chinese, or words joined
# by no-break spaces (Ctrl+Shift+Space).
_MINUTES = "本公司董事会会议纪要，付款已于五月完成。" * 220 + "信用卡号："
_JOINED = "\u00a0".join(["Payment"] * 600) + "\u00a0card:\u00a0"


_VML = ('<xml xmlns:v="urn:schemas-microsoft-com:vml" '
        'xmlns:o="urn:schemas-microsoft-com:office:office" '
        'xmlns:x="urn:schemas-microsoft-com:office:excel"><v:shape id="_x0000_s1025" '
        'type="#_x0000_t202" style="position:absolute;margin-left:60pt;margin-top:20pt;'
        'width:200pt;height:20pt;z-index:1" filled="f" stroked="f" o:insetmode="auto">'
        '<v:textbox><div style="text-align:left"><font face="Calibri" size="220" '
        'color="#000000">{}</font></div></v:textbox><x:ClientData ObjectType="Label">'
        "<x:Anchor>1, 0, 1, 0, 4, 0, 2, 0</x:Anchor><x:AutoFill>False</x:AutoFill>"
        "</x:ClientData></v:shape></xml>")


def _form_label(text: str, name: str = "xl/drawings/vmlDrawing1.vml") -> bytes:
    """Developer > Insert > Form Controls > Label on the sheet: its caption
    is in the sheet's legacy VML drawing, ``name``."""
    return _xlsx(_then(
        _sub("xl/worksheets/sheet1.xml", rb"</worksheet>", (
            b'<legacyDrawing xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
            b'relationships" r:id="rIdX"/></worksheet>')),
        _related("xl/worksheets/sheet1.xml", _RELS + "vmlDrawing",
                 "../" + name.removeprefix("xl/")),
        _typed(name, _VML.replace("{}", text), f"{_OOXML}vmlDrawing")))


_P14 = "http://schemas.microsoft.com/office/powerpoint/2010/main"


def _sections(*names: str) -> bytes:
    """Home > Section > Add Section: the deck's one slide in each section ``names``."""
    slide = '<p14:sldId id="256"/>'
    sections = "".join(
        f'<p14:section name="{name}" id="{{1B2C3D4E-5F60-4718-9A0B-1C2D3E4F506{i}}}">'
        f'<p14:sldIdLst>{"" if i else slide}</p14:sldIdLst></p14:section>'
        for i, name in enumerate(names))
    return rewrite(mf.pptx("Project update", "Notes."), _sub(
        "ppt/presentation.xml", rb"</p:presentation>", (
            '<p:extLst><p:ext uri="{521415D9-36F7-43E2-AB2F-B90AF26B5E84}">'
            f'<p14:sectionLst xmlns:p14="{_P14}">{sections}</p14:sectionLst></p:ext></p:extLst>'
            "</p:presentation>").encode()))


def _custom_show(name: str) -> bytes:
    """Slide Show > Custom Slide Show: a show of the deck's one slide."""
    return rewrite(mf.pptx("Project update", "Notes."), _sub(
        "ppt/presentation.xml", rb"<p:defaultTextStyle>", (
            f'<p:custShowLst><p:custShow name="{name}" id="0"><p:sldLst>'
            '<p:sld r:id="rId7"/></p:sldLst></p:custShow></p:custShowLst>{}').encode()))


_STORE = "{5A1C2D3E-4F50-4A6B-9C7D-8E9FA0B1C2D3}"
_APP_STORE = "{6668398D-A668-4E3E-A5EB-62B293D839F1}"  # Word's store id of docProps/app.xml
_EXTENDED = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"


def _bound(xpath: str, store: str, change: Callable[[Parts], Parts],
           prefixes: str = "") -> bytes:
    """A content control bound (w:dataBinding) to ``xpath`` in the store
    ``store``, its stale content "See file": Word shows the store's value."""
    return rewrite(_control(
        f'<w:alias w:val="Reference"/><w:dataBinding w:prefixMappings="{prefixes}" '
        f'w:xpath="{xpath}" w:storeItemID="{store}"/><w:text/>', "See file"), change)


def _company(name: str) -> bytes:
    # Insert > Quick Parts > Document Property > Company
    return _bound("/ns0:Properties[1]/ns0:Company[1]", _APP_STORE, _sub(
        "docProps/app.xml", rb"<Template>", f"<Company>{name}</Company>{{}}".encode()),
        f"xmlns:ns0='{_EXTENDED}'")


def _data_store(xml: str, name: str = "customXml/item1.xml") -> Callable[[Parts], Parts]:
    """The document's custom XML part holding ``xml``, stored as ``name``
    (its relationship and properties following it), its id ``_STORE``."""
    def change(p: Parts) -> Parts:
        p = {k: v for k, v in p.items() if k != "customXml/item1.xml"}
        base = name.rpartition("/")[2]
        p[f"customXml/_rels/{base}.rels"] = p.pop("customXml/_rels/item1.xml.rels")
        p[name] = xml.encode()
        p["customXml/itemProps1.xml"] = re.sub(rb'ds:itemID="[^"]+"',
                                               f'ds:itemID="{_STORE}"'.encode(),
                                               p["customXml/itemProps1.xml"])
        p["word/_rels/document.xml.rels"] = p["word/_rels/document.xml.rels"].replace(
            b'Target="../customXml/item1.xml"', f'Target="../{name}"'.encode())
        return p
    return change


def _display_units(low: str, high: str, unit: str, units: str) -> bytes:
    """Format Axis: bounds ``low`` .. ``high``, a major unit, numbers
    "0", display units ``units`` (Excel draws each number divided by them)."""
    return _chart_xlsx(_then(
        _sub(_CHART, rb'<valAx><axId val="100"/><scaling><orientation val="minMax"/>',
             f'{{}}<max val="{high}"/><min val="{low}"/>'.encode()),
        _sub(_CHART, rb'<axPos val="l"/><majorGridlines/>',
             b'{}<numFmt formatCode="0" sourceLinked="0"/>'),
        _sub(_CHART, rb'<crossAx val="10"/></valAx>', (
            f'<crossAx val="10"/><crossBetween val="between"/><majorUnit val="{unit}"/>'
            f"<dispUnits>{units}</dispUnits></valAx>").encode())))


def _screen_tip(tag: str, part: str = "ppt/slides/slide1.xml") -> bytes:
    """Insert > Link > ScreenTip: the title's text links to a page, the
    tip PowerPoint shows on the link in a slide show a card number."""
    folder, _, name = part.rpartition("/")
    rels = f"{folder}/_rels/{name}.rels"
    link = (f'<a:r><a:rPr lang="en-GB"><a:{tag} r:id="rIdTip" tooltip="Card {CARD}"/>'
            "</a:rPr><a:t>Pay here</a:t></a:r>")
    return rewrite(mf.pptx("Project update", "Notes."), _then(
        _sub(part, rb"<a:p>", b"{}" + link.encode()),
        _sub(rels, rb"</Relationships>", (
            f'<Relationship Id="rIdTip" Type="{_RELS}hyperlink" '
            'Target="https://pay.example.com/" TargetMode="External"/></Relationships>'
        ).encode())))


_MATH = "http://schemas.openxmlformats.org/officeDocument/2006/math"


def _equation_docx() -> bytes:
    """Insert > Equation: Word draws the equation's text (m:t) in the line."""
    return _word(f'<w:p><w:r><w:t xml:space="preserve">Card </w:t></w:r>'
                 f'<m:oMath xmlns:m="{_MATH}"><m:r><m:t>{CARD}</m:t></m:r></m:oMath></w:p>')


def _equation_pptx() -> bytes:
    """An equation on a slide, as PowerPoint writes it: its text in the
    a14:m choice, a picture as the fallback older readers show."""
    math = ('<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-'
            'compatibility/2006"><mc:Choice xmlns:a14="http://schemas.microsoft.com/office/'
            'drawing/2010/main" Requires="a14"><a14:m>'
            f'<m:oMathPara xmlns:m="{_MATH}"><m:oMath><m:r><m:t>{CARD}</m:t></m:r></m:oMath>'
            "</m:oMathPara></a14:m></mc:Choice><mc:Fallback><a:r><a:t> </a:t></a:r>"
            "</mc:Fallback></mc:AlternateContent>")
    return rewrite(mf.pptx("Project update", "Notes."),
                   _sub("ppt/slides/slide1.xml", rb"<a:p>", b"{}" + math.encode()))


def _delimited_equation(props: str, *arguments: str) -> bytes:
    """An equation whose delimiter draws characters of its own
    (``m:begChr``, ``m:sepChr``, ``m:endChr``) around its arguments."""
    args = "".join(f"<m:e><m:r><m:t>{a}</m:t></m:r></m:e>" for a in arguments)
    return _word(f'<w:p><w:r><w:t xml:space="preserve">Card </w:t></w:r>'
                 f'<m:oMath xmlns:m="{_MATH}"><m:d><m:dPr>{props}</m:dPr>{args}</m:d>'
                 "</m:oMath></w:p>")


def _equation_in_sheet() -> bytes:
    """Insert > Equation in Excel: a text box of the sheet's drawing, its
    text an equation (a14:m) in the branch Excel 2010 and later take."""
    box = ('<xdr:sp macro="" textlink=""><xdr:nvSpPr><xdr:cNvPr id="2" name="TextBox 1"/>'
           '<xdr:cNvSpPr txBox="1"/></xdr:nvSpPr><xdr:spPr/><xdr:txBody><a:bodyPr/>'
           '<a:p>{}</a:p></xdr:txBody></xdr:sp>')
    math = (f'<a14:m><m:oMathPara xmlns:m="{_MATH}"><m:oMath><m:r><m:t>{CARD}</m:t></m:r>'
            "</m:oMath></m:oMathPara></a14:m>")
    drawing = (
        '<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/'
        f'spreadsheetDrawing" {A} xmlns:mc="http://schemas.openxmlformats.org/markup-'
        'compatibility/2006" xmlns:a14="http://schemas.microsoft.com/office/drawing/2010/main">'
        "<xdr:oneCellAnchor><xdr:from><xdr:col>0</xdr:col><xdr:colOff>0</xdr:colOff>"
        '<xdr:row>5</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from><xdr:ext cx="3000000" '
        f'cy="300000"/><mc:AlternateContent><mc:Choice Requires="a14">{box.format(math)}'
        f"</mc:Choice><mc:Fallback>{box.format('<a:r><a:t> </a:t></a:r>')}</mc:Fallback>"
        "</mc:AlternateContent><xdr:clientData/></xdr:oneCellAnchor></xdr:wsDr>")
    return _chart_xlsx(lambda p: {**p, "xl/drawings/drawing1.xml": drawing.encode()})


def _ignorable_attribute(xml: str) -> bytes:
    """``xml`` in the body, its elements carrying an attribute of the same
    name in a namespace the document declares ignorable: Word skips it
    (ISO/IEC 29500-3 §10.1.1) and reads its own."""
    return rewrite(_word(xml), _sub("word/document.xml", rb'mc:Ignorable="',
                                    b'xmlns:zz="http://example.com/ignored" mc:Ignorable="zz '))


def _axis_ticks(low: str, high: str, unit: str, code: str) -> bytes:
    """Format Axis: bounds ``low`` .. ``high`` and a major unit (Excel draws
    a tick label at low + k * unit), numbers ``code``."""
    return _chart_xlsx(_then(
        _sub(_CHART, rb'<valAx><axId val="100"/><scaling><orientation val="minMax"/>',
             ("{}" + (f'<max val="{high}"/>' if high else "") + f'<min val="{low}"/>').encode()),
        _sub(_CHART, rb'<axPos val="l"/><majorGridlines/>',
             f'{{}}<numFmt formatCode="{code}" sourceLinked="0"/>'.encode()),
        _sub(_CHART, rb'<crossAx val="10"/></valAx>', (
            f'<crossAx val="10"/><crossBetween val="between"/><majorUnit val="{unit}"/>'
            "</valAx>").encode())))


def _log_axis(scaling: str, code: str, unit: str = "") -> bytes:
    """Format Axis > Logarithmic scale: the value axis's ``scaling`` (its
    c:logBase, bounds), numbers ``code``; ticks are a factor apart, the
    major ``unit`` where one is written."""
    return _chart_xlsx(_then(
        _sub(_CHART, rb'<valAx><axId val="100"/><scaling><orientation val="minMax"/>',
             ('<valAx><axId val="100"/><scaling><logBase val="10"/>'
              f'<orientation val="minMax"/>{scaling}').encode()),
        _sub(_CHART, rb'<axPos val="l"/><majorGridlines/>',
             f'{{}}<numFmt formatCode="{code}" sourceLinked="0"/>'.encode()),
        _sub(_CHART, rb'<crossAx val="10"/></valAx>', (
            '<crossAx val="10"/><crossBetween val="between"/>'
            + (f'<majorUnit val="{unit}"/>' if unit else "") + "</valAx>").encode())))


def _printed(header: str) -> bytes:
    """A workbook whose sheet prints the header ``header`` (codes as written)."""
    return _xlsx(_sheet_after(f"<headerFooter><oddHeader>{header}</oddHeader></headerFooter>"))


_A14 = 'xmlns:a14="http://schemas.microsoft.com/office/drawing/2010/main"'
_NUMBERED_4110 = '<a:buAutoNum type="arabicPlain" startAt="4110"/>'
_NUMBERED_4111 = '<a:buAutoNum type="arabicPlain" startAt="4111"/>'


def _equation_item() -> str:
    """A numbered item holding only an equation (Insert > Equation):
    PowerPoint numbers it, 4110, and the next item 4111."""
    return (f'<a:p><a:pPr marL="457200" indent="-457200">{_NUMBERED_4110}</a:pPr>'
            f'<a14:m {_A14}><m:oMathPara xmlns:m="http://schemas.openxmlformats.org/'
            'officeDocument/2006/math"><m:oMath><m:r><m:t>x</m:t></m:r></m:oMath>'
            '</m:oMathPara></a14:m><a:endParaRPr lang="en-US"/></a:p>')


def _shape_in_choice(parts: Parts) -> Parts:
    """The slide's text shape in an mc:AlternateContent, a picture of it
    its Fallback, as PowerPoint writes a shape holding an equation."""
    slide = parts["ppt/slides/slide1.xml"].decode()
    i = slide.index('<p:sp><p:nvSpPr><p:cNvPr id="3"')
    j = slide.index("</p:sp>", i) + len("</p:sp>")
    fallback = ('<p:pic><p:nvPicPr><p:cNvPr id="3" name="Equation"/><p:cNvPicPr/><p:nvPr/>'
                '</p:nvPicPr><p:blipFill><a:blip/></p:blipFill><p:spPr/></p:pic>')
    wrapped = (f"<mc:AlternateContent {_MCE}><mc:Choice {_A14} Requires=\"a14\">"
               f"{slide[i:j]}</mc:Choice><mc:Fallback>{fallback}</mc:Fallback>"
               "</mc:AlternateContent>")
    return {**parts, "ppt/slides/slide1.xml": (slide[:i] + wrapped + slide[j:]).encode()}


def _text_box_deck(list_style: str, change: Callable[[Parts], Parts] | None) -> bytes:
    """A deck whose slide holds a text box (no placeholder) of the card's
    last three groups, its list style ``list_style``, the package changed."""
    box = ('<p:sp><p:nvSpPr><p:cNvPr id="9" name="TextBox 8"/><p:cNvSpPr txBox="1"/><p:nvPr/>'
           '</p:nvSpPr><p:spPr/><p:txBody><a:bodyPr wrap="square"/>' + list_style
           + f'<a:p><a:pPr marL="457200" indent="-457200"/><a:r><a:t>{CARD[5:]}</a:t></a:r>'
           "</a:p></p:txBody></p:sp>")
    deck = rewrite(mf.pptx("Canteen hours", "Notes"), _sub(
        "ppt/slides/slide1.xml", rb"</p:spTree>", box.encode() + b"{}"))
    return rewrite(deck, change) if change else deck


def _styled_level(name: str, style: str, bullet: str = _NUMBERED_4111
                  ) -> Callable[[Parts], Parts]:
    """Part ``name``'s ``style`` (p:defaultTextStyle, p:otherStyle) giving
    its first level ``bullet``."""
    return _sub(name, f"<p:{style}><a:defPPr><a:defRPr lang=\"en-US\"/></a:defPPr>"
                "<a:lvl1pPr[^>]*>".encode(), ("{}" + bullet).encode())


def _date_axis(low: str, high: str, unit: str, time_unit: str, code: str) -> bytes:
    """A chart whose category axis is a date axis fixed at ``low`` ..
    ``high``, a major unit of ``unit`` ``time_unit``, labels ``code``."""
    axis = (f'<dateAx><axId val="10"/><scaling><orientation val="minMax"/><max val="{high}"/>'
            f'<min val="{low}"/></scaling><delete val="0"/><axPos val="b"/>'
            f'<numFmt formatCode="{code}" sourceLinked="0"/><majorTickMark val="out"/>'
            '<minorTickMark val="none"/><tickLblPos val="nextTo"/><crossAx val="100"/>'
            '<auto val="0"/><lblOffset val="100"/><baseTimeUnit val="days"/>'
            f'<majorUnit val="{unit}"/><majorTimeUnit val="{time_unit}"/></dateAx>')
    return _chart_xlsx(_sub(_CHART, rb"<catAx>.*?</catAx>", axis.encode()))


_P188 = 'xmlns:p188="http://schemas.microsoft.com/office/powerpoint/2018/8/main"'
_TC = 'xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments"'
_DIGITS = {"arabic": 0x660, "devanagari": 0x966, "thai": 0xE50}
_CARD_CODE = f'"{CARD[:-4]}"0000'.replace('"', "&quot;")

SHOWN: dict[str, Callable[[], bytes]] = {
    "watermark.docx": _watermark,
    "numbering.docx": _numbering,
    "field-instruction.docx": lambda: _word(
        f'<w:p><w:fldSimple w:instr="QUOTE &quot;Card {CARD}&quot;"/></w:p>'),
    "core-title.docx": lambda: rewrite(mf.docx(["Canteen hours."]), _sub(
        "docProps/core.xml", rb"</cp:coreProperties>",
        f"<dc:title>Card {CARD}</dc:title></cp:coreProperties>".encode())),
    **{f"{script}-digits.docx": (lambda z=zero: mf.docx([
        "Venue paid with card " + CARD.translate({ord(str(i)): z + i for i in range(10)})]))
       for script, zero in _DIGITS.items()},
    # a formula whose result is not stored: Excel computes and shows it
    "formula.xlsx": lambda: _xlsx(lambda p: p, cell=(
        f'<f>"Card {CARD[:10]}"&amp;"{CARD[10:]}"</f><v></v>'), style=' t="str"'),
    "validation-prompt.xlsx": lambda: _xlsx(_sheet_after(
        '<dataValidations count="1"><dataValidation type="whole" showInputMessage="1" '
        f'promptTitle="Refunds" prompt="Card {CARD}" sqref="B1"/></dataValidations>')),
    "validation-list.xlsx": lambda: _xlsx(_sheet_after(
        '<dataValidations count="1"><dataValidation type="list" sqref="B1">'
        f"<formula1>\"Card {CARD},Cash\"</formula1></dataValidation></dataValidations>")),
    "hyperlink-tooltip.xlsx": lambda: _xlsx(_sheet_after(
        f'<hyperlinks><hyperlink ref="A1" location="A1" tooltip="Card {CARD}"/></hyperlinks>')),
    "condition-section.xlsx": lambda: _xlsx(_numfmts(
        "[&gt;5000]&quot;ok &quot;0;" + _CARD_CODE), style=' s="1"'),
    "dxf-same-id.xlsx": lambda: _xlsx(_numfmts(_CARD_CODE, "&quot;x&quot;0"), style=' s="1"'),
    "conditional-format.xlsx": lambda: _xlsx(_numfmts("0", _CARD_CODE, 165, rule=True),
                                             style=' s="1"'),
    # a fraction's integer digits one a placeholder: 3x4111 1111 1111 1111+1/2
    "fraction-integer.xlsx": lambda: _formatted('0"x"0"111 1111 1111 111"0"+"?/?',
                                                "<v>341.5</v>"),
    # a quoted or escaped "/" is text, no fraction bar: 4111 1111 1111 1111/0
    "quoted-slash.xlsx": lambda: _formatted('"4111 1111 1111 "0000"/"0', "<v>11110</v>"),
    "escaped-slash.xlsx": lambda: _formatted('"4111 1111 1111 "0000\\/0', "<v>11110</v>"),
    # a mantissa of fifteen places: 378282246310005E-15, an Amex number
    "scientific-mantissa.xlsx": lambda: _formatted("000000000000000E+0",
                                                   "<v>0.378282246310005</v>"),
    "scientific-text.xlsx": lambda: _formatted('"4111 1111 1111 "0000E+0', "<v>11110000</v>"),
    # an inline string of two runs, the format's text before the whole of it
    "inline-runs.xlsx": lambda: _formatted(
        '"4111 1111 "@', '<is><r><t xml:space="preserve">1111 </t></r><r><t>1111</t></r>'
        '<rPh sb="0" eb="1"><t>1</t></rPh></is>', ' t="inlineStr"'),
    "macro-sheet.xlsx": lambda: _xlsx(_added("xl/macrosheets/sheet1.xml", (
        f'<xm:macrosheet xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main" {S}>'
        f'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Card {CARD}</t></is></c></row>'
        "</sheetData></xm:macrosheet>"))),
    "chart-sheet-header.xlsx": lambda: _xlsx(_added("xl/chartsheets/sheet1.xml", (
        f"<chartsheet {S}><headerFooter><oddHeader>&amp;CCard {CARD}</oddHeader>"
        "</headerFooter></chartsheet>"))),
    "defined-name.xlsx": lambda: _xlsx(_sub("xl/workbook.xml", rb"</workbook>", (
        f'<definedNames><definedName name="Pay">"Card {CARD}"</definedName></definedNames>'
        "</workbook>").encode())),
    "notes-master.pptx": lambda: rewrite(mf.pptx("Project update", "Notes."), _added(
        "ppt/notesMasters/notesMaster1.xml", f"<p:notesMaster {A} {P}>{_PPT_BOX}</p:notesMaster>")),
    "handout-master.pptx": lambda: rewrite(mf.pptx("Project update", "Notes."), _added(
        "ppt/handoutMasters/handoutMaster1.xml",
        f"<p:handoutMaster {A} {P}>{_PPT_BOX}</p:handoutMaster>")),
    "chartex.pptx": lambda: rewrite(mf.pptx("Project update", "Notes."),
                                    _added("ppt/charts/chartEx1.xml", _CHARTEX)),
    # shown by Office, in what intake did not read
    "chart-user-shapes.xlsx": _user_shapes,
    "axis-minimum.xlsx": _axis_minimum,
    "comment-author.docx": lambda: _commented_docx(f"Card {CARD}"),
    "comment-initials.docx": lambda: _commented_docx("Jane Doe", CARD),
    "insertion-author.docx": lambda: _revised(
        f'<w:ins w:id="1" w:author="{CARD}" w:date="2025-05-12T08:15:00Z"><w:r><w:t>'
        "Open 9-5.</w:t></w:r></w:ins>"),
    "deletion-author.docx": lambda: _revised(
        f'<w:del w:id="1" w:author="{CARD}"><w:r><w:delText>Shut.</w:delText></w:r></w:del>'),
    "format-change-author.docx": lambda: _revised(
        '<w:r><w:rPr><w:b/><w:rPrChange w:id="1" w:author="' + CARD + '"><w:rPr/>'
        "</w:rPrChange></w:rPr><w:t>Open 9-5.</w:t></w:r>"),
    "content-control-title.docx": lambda: _control(f'<w:alias w:val="Card {CARD}"/>'
                                                   '<w:tag w:val="t"/>', "Menu"),
    "drop-down-item.docx": lambda: _control(
        '<w:dropDownList><w:listItem w:displayText="Choose" w:value="0"/>'
        f'<w:listItem w:displayText="Card {CARD}" w:value="1"/></w:dropDownList>', "Choose"),
    "drop-down-value.docx": lambda: _control(
        f'<w:dropDownList><w:listItem w:displayText="Card" w:value="{CARD}"/>'
        "</w:dropDownList>", "Choose"),
    "combo-box-item.docx": lambda: _control(
        f'<w:comboBox><w:listItem w:displayText="Card {CARD}" w:value="x"/></w:comboBox>',
        "Pick"),
    "legacy-drop-down.docx": lambda: _form_field(
        '<w:ddList><w:result w:val="1"/><w:listEntry w:val="Choose"/>'
        f'<w:listEntry w:val="Card {CARD}"/></w:ddList>', "FORMDROPDOWN"),
    "form-field-status.docx": lambda: _form_field(
        f'<w:statusText w:type="text" w:val="Card {CARD}"/><w:textInput/>', "FORMTEXT",
        "<w:r><w:t>x</w:t></w:r>"),
    "form-field-help.docx": lambda: _form_field(
        f'<w:helpText w:type="text" w:val="Card {CARD}"/><w:textInput/>', "FORMTEXT",
        "<w:r><w:t>x</w:t></w:r>"),
    "form-field-default.docx": lambda: _form_field(
        f'<w:textInput><w:default w:val="Card {CARD}"/></w:textInput>', "FORMTEXT"),
    "comment-author.pptx": lambda: _ppt_commented(
        f'<p:cmAuthorLst {P}><p:cmAuthor id="1" name="Card {CARD}" initials="AB" lastIdx="1" '
        'clrIdx="0"/></p:cmAuthorLst>', "ppt/commentAuthors.xml",
        f"{_OOXML}presentationml.commentAuthors+xml", _RELS + "commentAuthors"),
    "modern-comment-author.pptx": lambda: _ppt_commented(
        f'<p188:authorLst {_P188}><p188:author id="{{1}}" name="Jane Doe" initials="{CARD}" '
        'userId="Jane Doe" providerId="None"/></p188:authorLst>', "ppt/authors.xml",
        "application/vnd.ms-powerpoint.authors+xml",
        "http://schemas.microsoft.com/office/2018/10/relationships/authors"),
    "threaded-comment-person.xlsx": lambda: _xlsx(_typed(
        "xl/persons/people.xml", f'<personList {_TC}><person displayName="Card {CARD}" '
        'id="{1}" userId="jane" providerId="None"/></personList>',
        "application/vnd.ms-excel.person+xml")),
    # a card number right after a "-": a negative number Excel shows with
    # its minus, or text
    "negative-card-text.xlsx": lambda: _formatted(f'"{CARD[:-4]}"0000', "<v>-1111</v>"),
    "negative-amex.xlsx": lambda: _formatted("0", "<v>-378282246310005</v>"),
    "card-after-dash.docx": lambda: _word(
        f"<w:p><w:r><w:t>Refund to card no.-{CARD.replace(' ', '')}</w:t></w:r></w:p>"),
    # a whole number under a fraction format: Excel blanks the fraction 0/1
    "fraction-whole.xlsx": lambda: _formatted(f'"{CARD[:-3]}"0 ?/?', "<v>111</v>"),
    "fraction-whole-rounded.xlsx": lambda: _formatted(f'"{CARD[:-3]}"0 ?/?', "<v>110.99</v>"),
    "fraction-quarters-whole.xlsx": lambda: _formatted(f'"{CARD[:-3]}"# ?/4', "<v>111</v>"),
    "form-control-label.xlsx": lambda: _form_label(f"Card {CARD}"),
    "form-control-label-lines.xlsx": lambda: _form_label(f"Paid<br>Card {CARD}<br>Thanks"),
    "vml-typed.xlsx": lambda: _form_label(f"Card {CARD}", "xl/controls/label1.xml"),
    "section-name.pptx": lambda: _sections("Intro", f"Card {CARD}"),
    "custom-show.pptx": lambda: _custom_show(f"Card {CARD}"),
    "bound-company.docx": lambda: _company(CARD),
    "bound-data-part.docx": lambda: _bound("/r[1]/c[1]", _STORE, _data_store(
        f"<r><c>{CARD}</c></r>", "customXml/data.xml")),
    "bound-attribute.docx": lambda: _bound("/r[1]/@c", _STORE, _data_store(
        f'<r c="{CARD}"/>')),
    "axis-display-units.xlsx": lambda: _display_units(
        "378282246310005000", "378282246310015000", "10000",
        '<builtInUnit val="thousands"/>'),
    "axis-custom-unit.xlsx": lambda: _display_units(
        "3782822463100050", "3782822463100150", "100", '<custUnit val="10"/>'),
    # a card number with more digits beside it: an expiry, a CVV, a line number
    "card-expiry.docx": lambda: mf.docx([f"Deposit paid by card {CARD} 12/27, thank you."]),
    "card-cvv.docx": lambda: mf.docx(["Card 5555 5555 5555 4444 737"]),
    "card-line-number.xlsx": lambda: mf.xlsx([["Paid with", f"1 {CARD}"]]),
    # a hidden run before the card number Word shows alone
    "card-hidden-digit-dash.docx": lambda: _word(
        '<w:p><w:r><w:rPr><w:vanish/></w:rPr><w:t xml:space="preserve">1-</w:t></w:r>'
        f"<w:r><w:t>{CARD}</w:t></w:r></w:p>"),
    "card-hidden-digit-space.docx": lambda: _word(
        '<w:p><w:r><w:rPr><w:vanish/></w:rPr><w:t xml:space="preserve">7 </w:t></w:r>'
        f"<w:r><w:t>{CARD}</w:t></w:r></w:p>"),
    "screen-tip.pptx": lambda: _screen_tip("hlinkClick"),
    "screen-tip-hover.pptx": lambda: _screen_tip("hlinkHover"),
    "screen-tip-layout.pptx": lambda: _screen_tip("hlinkClick",
                                                  "ppt/slideLayouts/slideLayout1.xml"),
    "axis-second-tick.xlsx": lambda: _axis_ticks("1000", "2000", "111", _CARD_CODE),
    "axis-amex-tick.xlsx": lambda: _axis_ticks("378282246310000", "378282246310020", "5", "0"),
    "axis-tick-no-maximum.xlsx": lambda: _axis_ticks("378282246310000", "", "5", "0"),
    # a logarithmic axis from 3.78282246310005: a tick is 378282246310005
    "axis-log-tick.xlsx": lambda: _log_axis(
        '<max val="1E+15"/><min val="3.78282246310005"/>', "0"),
    "axis-log-tick-no-maximum.xlsx": lambda: _log_axis('<min val="3.78282246310005"/>', "0"),
    # a number after 400 zeros (xsd:double allows them), shown by 0 and by General
    "padded-number.xlsx": lambda: _formatted("0", f"<v>{'0' * 400}378282246310005</v>"),
    "padded-number-general.xlsx": lambda: _xlsx(lambda p: p, cell=(
        f"<v>{'0' * 400}378282246310005</v>")),
    "padded-number-text.xlsx": lambda: _formatted(f'"{CARD[:-4]}"0000', f"<v>{'0' * 400}1111</v>"),
    # a header's codes Excel prints nothing for: a colour, a font size, a
    # font, underline toggles; and its page number, 1 on the first page
    "header-colour.xlsx": lambda: _printed(
        "&amp;CCard 4111&amp;K000000 1111&amp;K01+25 1111&amp;KFF0000 1111"),
    "header-font-size.xlsx": lambda: _printed(f"&amp;CCard {CARD[:-4]}&amp;101111"),
    "header-font-size-3.xlsx": lambda: _printed(f"&amp;CCard {CARD[:-4]}&amp;1001111"),
    "header-font.xlsx": lambda: _printed(
        f'&amp;CCard {CARD[:10]}&amp;"Arial,Regular"{CARD[10:]}'),
    "header-toggles.xlsx": lambda: _printed(
        "&amp;CCard 4111&amp;U1111&amp;B1111&amp;X&amp;Y1111&amp;U&amp;G"),
    "header-page-number.xlsx": lambda: _printed(f"&amp;LCard {CARD[:-1]}&amp;P"),
    "header-page-sum.xlsx": lambda: _printed(f"&amp;RCard {CARD[:-4]}&amp;P+1110"),
    # run content Word draws as characters: a non-breaking hyphen, a page number
    "non-breaking-hyphen-before.docx": lambda: _word(
        f"<w:p><w:r><w:t>Ref 2024</w:t><w:noBreakHyphen/><w:t>{CARD}</w:t></w:r></w:p>"),
    "non-breaking-hyphen-after.docx": lambda: _word(
        f"<w:p><w:r><w:t>Card {CARD}</w:t><w:noBreakHyphen/><w:t>7</w:t></w:r></w:p>"),
    "page-number.docx": lambda: _word(
        f"<w:p><w:r><w:t>Card {CARD[:-1]}</w:t><w:pgNum/></w:r></w:p>"),
    "page-number-header.docx": lambda: _header(
        f"<w:r><w:t>Card {CARD[:-1]}</w:t><w:pgNum/></w:r>"),
    "footnote-number.docx": lambda: _footnoted(f"Card {CARD[:-1]}"),
    # a note's number drawn raised right after or before a card number,
    # read glued to it: "4111 1111 1111 11111", "14111 1111 1111 1111"
    "footnote-after-card.docx": lambda: _footnoted(f"Card {CARD}"),
    "footnote-mark-before-card.docx": lambda: _footnoted("Paid.", CARD),
    # tracked changes Word does not show by default (deleted text, a
    # deleted line break or paragraph mark), or shows in its Original view
    # only (inserted text, an inserted paragraph mark), inside a card number
    "tracked-deletion-digit.docx": lambda: _tracked(
        f"<w:p>{_run('Card ' + CARD[:-1])}{_deleted('9')}{_run(CARD[-1])}</w:p>", hidden=True),
    "tracked-deletion-group.docx": lambda: _tracked(
        f"<w:p>{_run('Card ' + CARD[:9])}{_deleted(' 0000')}{_run(CARD[9:])}</w:p>"),
    "moved-from-digit.docx": lambda: _tracked(
        f"<w:p>{_run('Card ' + CARD[:-1])}<w:moveFrom {_AUTHOR}>{_run('9')}</w:moveFrom>"
        f"{_run(CARD[-1])}</w:p>", hidden=True),
    "deleted-line-break.docx": lambda: _tracked(
        f"<w:p>{_run('Card ' + CARD[:10])}<w:del {_AUTHOR}><w:r><w:br/></w:r></w:del>"
        f"{_run(CARD[10:])}</w:p>"),
    "deleted-paragraph-mark.docx": lambda: _tracked(
        f"<w:p>{_mark('del')}{_run('Card ' + CARD[:10])}</w:p><w:p>{_run(CARD[10:])}</w:p>",
        hidden=True),
    "original-view-digit.docx": lambda: _tracked(
        f"<w:p>{_run('Card ' + CARD[:-1])}<w:ins {_AUTHOR}>{_run('9')}</w:ins>"
        f"{_deleted(CARD[-1])}</w:p>"),
    "inserted-paragraph-mark.docx": lambda: _tracked(
        f"<w:p>{_mark('ins')}{_run('Card ' + CARD[:10])}</w:p><w:p>{_run(CARD[10:])}</w:p>"),
    # text shown apart from the line (a tracked change's author, a tooltip,
    # a field's instruction, a control's title) around one group of a card
    # number Word shows whole: Track Changes on, correcting a number
    "tracked-insertion-group.docx": lambda: _word("<w:p>" + _split(
        lambda runs: f"<w:ins {_AUTHOR}>{runs}</w:ins>") + "</w:p>"),
    "hyperlink-group.docx": lambda: _word("<w:p>" + _split(
        lambda runs: f'<w:hyperlink w:anchor="x" w:tooltip="Pay">{runs}</w:hyperlink>')
        + "</w:p>"),
    "quote-field-group.docx": lambda: _word("<w:p>" + _split(
        lambda runs: f'<w:fldSimple w:instr=" QUOTE 1111 ">{runs}</w:fldSimple>') + "</w:p>"),
    "page-field.docx": lambda: _word(
        f'<w:p>{_run("Card " + CARD[:-1])}<w:fldSimple w:instr=" PAGE ">{_run("1")}'
        "</w:fldSimple></w:p>"),
    "page-field-complex.docx": lambda: _word(
        f'<w:p>{_run("Card " + CARD[:-1])}<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> PAGE </w:instrText></w:r>'
        f'<w:r><w:fldChar w:fldCharType="separate"/></w:r>{_run("1")}'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'),
    "control-title-group.docx": lambda: _word("<w:p>" + _split(
        lambda runs: '<w:sdt><w:sdtPr><w:alias w:val="Number"/></w:sdtPr><w:sdtContent>'
        f"{runs}</w:sdtContent></w:sdt>") + "</w:p>"),
    "phonetic-guide-group.docx": lambda: _word("<w:p>" + _split(
        lambda runs: '<w:r><w:ruby><w:rubyPr><w:rubyAlign w:val="center"/></w:rubyPr>'
        f'<w:rt>{_run("ichi")}</w:rt><w:rubyBase>{runs}</w:rubyBase></w:ruby></w:r>')
        + "</w:p>"),
    # a legacy drop-down's entry picked, shown in the line, the others apart
    "legacy-drop-down-digit.docx": lambda: _word(
        f'<w:p>{_run("Card " + CARD[:-1])}<w:r><w:fldChar w:fldCharType="begin"><w:ffData>'
        '<w:name w:val="Digit"/><w:enabled/><w:ddList><w:result w:val="1"/>'
        '<w:listEntry w:val="-"/><w:listEntry w:val="1"/></w:ddList></w:ffData></w:fldChar>'
        '</w:r><w:r><w:instrText xml:space="preserve"> FORMDROPDOWN </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'),
    "screen-tip-group.pptx": lambda: _split_link("hlinkClick"),
    # an equation's text (Office Math), in Word and on a slide
    "equation.docx": _equation_docx,
    "equation.pptx": _equation_pptx,
    "equation-in-sheet.xlsx": _equation_in_sheet,
    # an attribute in an ignorable namespace before Word's own of that name
    "ignorable-attribute-symbol.docx": lambda: _ignorable_attribute(
        '<w:p><w:r><w:t xml:space="preserve">Card </w:t><w:sym zz:char="0041" '
        f'w:font="Calibri" w:char="0034"/><w:t>{CARD[1:]}</w:t></w:r></w:p>'),
    "ignorable-attribute-delimiter.docx": lambda: _ignorable_attribute(
        f'<w:p><w:r><w:t xml:space="preserve">Card </w:t></w:r><m:oMath xmlns:m="{_MATH}">'
        '<m:d><m:dPr><m:begChr zz:val="(" m:val="4"/><m:endChr m:val=""/></m:dPr>'
        f"<m:e><m:r><m:t>{CARD[1:]}</m:t></m:r></m:e></m:d></m:oMath></w:p>"),
    # what an equation's delimiter draws: its opening character, a separator
    "equation-delimiter.docx": lambda: _delimited_equation(
        '<m:begChr m:val="4"/><m:endChr m:val=""/>', "111 1111 1111 1111"),
    "equation-operator.docx": lambda: _word(
        f'<w:p><w:r><w:t xml:space="preserve">Card </w:t></w:r><m:oMath xmlns:m="{_MATH}">'
        '<m:nary><m:naryPr><m:chr m:val="4"/></m:naryPr><m:sub/><m:sup/>'
        f"<m:e><m:r><m:t>{CARD[1:]}</m:t></m:r></m:e></m:nary></m:oMath></w:p>"),
    "equation-separator.docx": lambda: _delimited_equation(
        '<m:begChr m:val=""/><m:sepChr m:val="1"/><m:endChr m:val=""/>',
        "4111 1111 1111 111", ""),
    # a tracked change inside a QUOTE field's instruction (shown by Alt+F9,
    # and as its result once updated) or a phonetic guide: its author and
    # the deleted text were read inside the text read aside
    "field-code-deleted-digit.docx": lambda: _tracked("<w:p>" + _run("Ref ") + _field(
        _instr(f' QUOTE "{CARD[:-1]}') + f'<w:del {_AUTHOR}><w:r><w:delInstrText>9'
        f'</w:delInstrText></w:r></w:del>' + _instr(f'{CARD[-1]}" ')) + "</w:p>", hidden=True),
    "field-code-inserted-group.docx": lambda: _tracked("<w:p>" + _run("Ref ") + _field(
        _instr(f' QUOTE "{CARD[:10]}') + f"<w:ins {_AUTHOR}>{_instr(CARD[10:15])}</w:ins>"
        + _instr(f'{CARD[15:]}" ')) + "</w:p>"),
    "field-code-format-change.docx": lambda: _tracked("<w:p>" + _run("Ref ") + _field(
        _instr(f' QUOTE "{CARD[:10]}') + f"<w:r><w:rPr><w:b/><w:rPrChange {_AUTHOR}><w:rPr/>"
        f"</w:rPrChange></w:rPr><w:instrText>{CARD[10:15]}</w:instrText></w:r>"
        + _instr(f'{CARD[15:]}" ')) + "</w:p>"),
    "phonetic-guide-deleted-digit.docx": lambda: _tracked("<w:p>" + _guide(
        _run(CARD[:-1]) + _deleted("9") + _run(CARD[-1])) + "</w:p>", hidden=True),
    "phonetic-guide-inserted-group.docx": lambda: _tracked("<w:p>" + _guide(
        _run(CARD[:10]) + f"<w:ins {_AUTHOR}>{_run(CARD[10:15])}</w:ins>" + _run(CARD[15:]))
        + "</w:p>"),
    # a card number only Word's Original view shows whole, ending a long
    # paragraph of no ASCII space: its other readings were cut inside it
    "original-view-long-chinese.docx": lambda: _tracked(_original_view(_MINUTES)),
    "original-view-long-joined.docx": lambda: _tracked(_original_view(_JOINED)),
    # a floating text box anchored between two groups of a card number Word
    # draws whole: its paragraphs ended the line
    "text-box-in-line.docx": lambda: _word("<w:p>" + _run(f"Card {CARD[:10]}") + _text_box(
        "<w:p>" + _run("DRAFT") + "</w:p>") + _run(CARD[10:]) + "</w:p>"),
    "empty-text-box-in-line.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:10]}") + _text_box("<w:p/>") + _run(CARD[10:]) + "</w:p>"),
    "vml-text-box-in-line.docx": lambda: _word("<w:p>" + _run(f"Card {CARD[:10]}") + _text_box(
        "<w:p>" + _run("DRAFT") + "</w:p>", vml=True) + _run(CARD[10:]) + "</w:p>"),
    # a group (a digit) written in both branches of an mc:AlternateContent,
    # of which Word takes one: read twice
    "alternate-content-group.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:10]}") + _both_branches(_run(CARD[10:14]))
        + _run(CARD[14:]) + "</w:p>"),
    "alternate-content-digit.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:-1]}") + "<w:r>" + _both_branches("<w:t>1</w:t>")
        + "</w:r>" + _run(" paid") + "</w:p>"),
    # an inline text box (drawn as a character) completing a card number
    "inline-text-box.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:15]}") + _inline_box("<w:p>" + _run(CARD[15:]) + "</w:p>")
        + _run(" paid") + "</w:p>"),
    "inline-vml-text-box.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:15]}") + _inline_box(
            "<w:p>" + _run(CARD[15:]) + "</w:p>", vml=True) + _run(" paid") + "</w:p>"),
    # a Choice Word skips (its namespace unknown): the Fallback's text, or none
    "skipped-choice-empty-fallback.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:-1]}") + _skipped(_run("9"), "") + _run(CARD[-1] + " paid")
        + "</w:p>"),
    "skipped-choice-no-fallback.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:-1]}") + _skipped(_run("9")) + _run(CARD[-1] + " paid")
        + "</w:p>"),
    "skipped-choice-field-code.docx": lambda: _word("<w:p>" + _field(
        _instr(f' QUOTE "{CARD[:-1]}') + _skipped(_instr("9")) + _instr(f'{CARD[-1]}"'))
        + "</w:p>"),
    # two Choices Word skips: both Fallbacks shown
    "two-fallbacks.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:5]}") + _skipped(_run("2222"), _run(CARD[5:9])) + _run(" ")
        + _skipped(_run("3333"), _run(CARD[10:14])) + _run(CARD[14:]) + "</w:p>"),
    # Fallback, Choice, Fallback: Word takes each AlternateContent's branch
    # by what it understands
    "fallback-choice-fallback.docx": lambda: _word(
        "<w:p>" + _fallback_choice_fallback(_run, _MCE, "w14") + "</w:p>"),
    "fallback-choice-fallback.pptx": lambda: rewrite(mf.pptx("Project update", "Notes."), _sub(
        "ppt/slides/slide1.xml", rb"<a:r>(?:(?!</a:r>).)*Project update.*?</a:r>",
        _fallback_choice_fallback(lambda t: f"<a:r><a:t>{t}</a:t></a:r>", _MCE_A,
                                  "a14").encode())),
    # two inline text boxes, the second and fourth groups, as Word writes
    # them (a wps Choice, a VML picture its Fallback): drawn together
    "two-inline-text-boxes.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:5]}") + _boxed_choice(CARD[5:9]) + _run(CARD[9:15])
        + _boxed_choice(CARD[15:]) + "</w:p>"),
    # an inline text box whose group is a link with a ScreenTip (shown
    # only on hover), and two inline boxes around a deleted one
    "inline-text-box-tooltip.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:5]}") + _inline_box(
            '<w:p><w:hyperlink w:anchor="top" w:tooltip="Open">' + _run(CARD[5:9])
            + "</w:hyperlink></w:p>") + _run(CARD[9:]) + "</w:p>"),
    "inline-text-box-deleted.docx": lambda: _word(
        "<w:p>" + _run(f"Card {CARD[:5]}") + _boxed_choice(CARD[5:9]) + f"<w:del {_AUTHOR}>"
        + _inline_box(f"<w:p>{_deleted('0')}</w:p>") + "</w:del>" + _run(CARD[9:15])
        + _boxed_choice(CARD[15:]) + "</w:p>"),
    # a digit in an element of an mc:Ignorable namespace Word does not
    # understand: dropped with the element
    "ignorable-element.docx": lambda: _word(
        f'<w:p {_MCE} {_UNKNOWN} mc:Ignorable="x9">' + _run(f"Card {CARD[:10]}")
        + "<x9:note>" + _run("0") + "</x9:note>" + _run(CARD[10:]) + "</w:p>"),
    # a QUOTE field's instruction, then a phonetic guide "7": read glued
    "field-code-then-guide.docx": lambda: _word(
        "<w:p>" + _field(_instr(f" QUOTE {CARD}")) + _run(" and ") + _guide(_run("7"))
        + "</w:p>"),
    # a group in both branches, on a slide, in an Excel text box, a chart title
    "alternate-content-group.pptx": lambda: rewrite(mf.pptx("Project update", "Notes."), _then(
        _sub("ppt/slides/slide1.xml", rb"<a:r>(?:(?!</a:r>).)*Project update.*?</a:r>",
             _drawn_twice().encode()),
        _sub("ppt/slides/slide1.xml", rb"<p:sld ", f"<p:sld {_MCE_A} ".encode()))),
    "alternate-content-chart-title.xlsx": lambda: _chart_xlsx(_sub(
        _CHART, rb"<chart>", (f"<chart><title><tx><rich {A} {_MCE_A}><a:bodyPr/><a:p>"
                              + _drawn_twice() + '</a:p></rich></tx><overlay val="0"/>'
                              "</title>").encode())),
    # a slide number drawn as the presentation's first (1111), or as the
    # slide's place over a stale stored "7"
    "slide-number-first.pptx": lambda: _slide(
        f"<a:p><a:r><a:t>Card {CARD[:15]}</a:t></a:r>{_slide_number('&#8249;#&#8250;')}</a:p>",
        first=CARD[15:]),
    "slide-number-stale.pptx": lambda: _slide(
        f"<a:p><a:r><a:t>Card {CARD[:-1]}</a:t></a:r>{_slide_number('7')}</a:p>"),
    # a numbered bullet drawing the first group, the second item's; a
    # character bullet drawing a digit
    "numbered-bullet.pptx": lambda: _slide(
        _bulleted('<a:buAutoNum type="arabicPlain" startAt="4110"/>', "Refunds")
        + _bulleted('<a:buAutoNum type="arabicPlain" startAt="4110"/>', CARD[5:])),
    "numbered-bullet-list-style.pptx": lambda: _slide(
        _bulleted('<a:buAutoNum type="arabicPlain" startAt="4111"/>', CARD[5:], style=True)),
    "character-bullet.pptx": lambda: _slide(
        _bulleted('<a:buChar char="4"/>', CARD[1:])),
    # a numbered list's first item an equation, PowerPoint numbering it
    # (intake neither labelled nor counted it), also in the shape
    # PowerPoint wraps in an mc:AlternateContent; a first item of an empty
    # run, which PowerPoint does not number (intake counted it)
    "numbered-bullet-after-equation.pptx": lambda: _slide(
        _equation_item() + _bulleted(_NUMBERED_4110, CARD[5:])),
    "numbered-bullet-after-equation-wrapped.pptx": lambda: rewrite(_slide(
        _equation_item() + _bulleted(_NUMBERED_4110, CARD[5:])), _shape_in_choice),
    "numbered-bullet-after-empty-run.pptx": lambda: _slide(
        f'<a:p><a:pPr marL="457200" indent="-457200">{_NUMBERED_4111}</a:pPr>'
        '<a:r><a:rPr lang="en-US" dirty="0"/><a:t></a:t></a:r></a:p>'
        + _bulleted(_NUMBERED_4111, CARD[5:])),
    # a text box's numbered bullet inherited from outside its text body:
    # the presentation's default text style, the master's style for text
    # not in a placeholder, the box's own list style's default level
    "numbered-bullet-default-text-style.pptx": lambda: _text_box_deck(
        "<a:lstStyle/>", _styled_level("ppt/presentation.xml", "defaultTextStyle")),
    "numbered-bullet-other-style.pptx": lambda: _text_box_deck(
        "<a:lstStyle/>", _styled_level("ppt/slideMasters/slideMaster1.xml", "otherStyle")),
    "numbered-bullet-default-level.pptx": lambda: _text_box_deck(
        f"<a:lstStyle><a:defPPr>{_NUMBERED_4111}</a:defPPr></a:lstStyle>", None),
    # a date axis by 2 months from 15 Nov 1902: its second label is on
    # 15 Jan 1903, 1111 (intake stepped in days: even serials only)
    "date-axis-months.xlsx": lambda: _date_axis("1050", "1115", "2", "months", _CARD_CODE),
    "outline.pdf": _outline_pdf,
    "labelinfo-off.docx": lambda: rewrite((FILES / "highly-confidential.docx").read_bytes(),
                                          _label_info_off),
}
SHOWN_FLOOR = {"labelinfo-off.docx": "SECRET"}
