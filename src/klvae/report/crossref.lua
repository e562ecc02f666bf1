-- Quarto-style cross-references for plain pandoc (the render path used where Quarto is
-- not installed). Numbers figures with ids "fig-*" and tables with ids "tbl-*" in
-- document order, prefixes their captions with "Figure N:" / "Table N:", and turns the
-- citations @fig-x / @tbl-x into links reading "Figure N" / "Table N" and @sec-x into
-- "Section N" (N.M for subsections: the numbers pandoc's --number-sections gives, headers
-- marked .unnumbered skipped). An unknown reference becomes "??" (as Quarto does), so tests
-- can find it.

local kinds = { fig = "Figure", tbl = "Table", sec = "Section" }
local counts = { fig = 0, tbl = 0 }
local labels = {}

local function kind_of(id)
  local k = id and id:match("^(%a+)%-")
  if k and kinds[k] then return k end
  return nil
end

local function number(el)
  local k = kind_of(el.identifier)
  if not k then return nil end
  counts[k] = counts[k] + 1
  local label = kinds[k] .. "\u{00A0}" .. counts[k] -- no line break inside "Figure 3"
  labels[el.identifier] = label
  -- Typst numbers its figures (and tables, as figures of kind table) itself, in the
  -- same order: only the references need resolving there.
  if FORMAT:match("typst") then return el end
  local prefix = { pandoc.Strong({ pandoc.Str(label .. ":") }), pandoc.Space() }
  local long = el.caption.long
  if #long == 0 then
    el.caption.long = { pandoc.Plain(prefix) }
  else
    local first = long[1]
    if first.t == "Plain" or first.t == "Para" then
      for i = #prefix, 1, -1 do first.content:insert(1, prefix[i]) end
    else
      long:insert(1, pandoc.Plain(prefix))
    end
  end
  return el
end

-- Section numbers in document order, as pandoc's --number-sections counts them.
local section = {}
local function number_headers(doc)
  for _, block in ipairs(doc.blocks) do
    if block.t == "Header" and not block.classes:includes("unnumbered") then
      local level = block.level
      section[level] = (section[level] or 0) + 1
      for deeper = level + 1, 9 do section[deeper] = nil end
      if kind_of(block.identifier) == "sec" then
        local parts = {}
        for l = 1, level do parts[#parts + 1] = tostring(section[l] or 0) end
        labels[block.identifier] = "Section\u{00A0}" .. table.concat(parts, ".")
      end
    end
  end
  return nil
end

local function resolve(cite)
  local out = pandoc.List()
  for i, c in ipairs(cite.citations) do
    local k = kind_of(c.id)
    if not k then return nil end -- a bibliography citation: leave it to citeproc
    if i > 1 then out:insert(pandoc.Str(", ")) end
    local label = labels[c.id]
    if label then
      out:insert(pandoc.Link({ pandoc.Str(label) }, "#" .. c.id, "", { class = "crossref" }))
    else
      io.stderr:write("crossref.lua: unresolved reference @" .. c.id .. "\n")
      out:insert(pandoc.Strong({ pandoc.Str("?@" .. c.id) }))
    end
  end
  return out
end

-- Quarto's conditional content: ::: {.content-visible when-format="html"} is kept (unwrapped)
-- only in that output format, as Quarto does (e.g. the HTML's link to the PDF).
local function conditional(div)
  if not div.classes:includes("content-visible") then return nil end
  local wanted = div.attributes["when-format"]
  if wanted and not FORMAT:match(wanted) then return {} end
  return div.content
end

return {
  { Div = conditional },
  { Pandoc = number_headers },
  { Figure = number, Table = number },
  { Cite = resolve },
}
