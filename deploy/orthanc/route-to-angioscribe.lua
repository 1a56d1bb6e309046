-- Route every study the cath lab stores into Orthanc to angioscribe, once, and never route back
-- what angioscribe itself sent (its SR, Key Object Selection and Encapsulated PDF land in the
-- same study, which makes the study "stable" a second time).
--
-- The angioscribe modality is the DicomModalities entry named below; its AE title is read from
-- Orthanc's own configuration, so it is written in one place only (orthanc.json).
-- An instance is routed when it is in a series whose modality angioscribe does not write, it did
-- not arrive from angioscribe's AE title, and it was not routed before (user metadata
-- "RoutedToAngioscribe", declared in orthanc.json). A store that fails leaves the instances
-- unmarked, so the study's next stable event routes them again; to resend at once, use "Send to
-- DICOM modality" in Orthanc Explorer.

ANGIOSCRIBE_MODALITY = 'angioscribe'
ROUTED = 'RoutedToAngioscribe'
WRITTEN_BY_ANGIOSCRIBE = { SR = true, KO = true, DOC = true }

local function AngioscribeAet()
   local modality = ParseJson(RestApiGet('/modalities/' .. ANGIOSCRIBE_MODALITY .. '/configuration'))
   return modality['AET']
end

local function InstancesToRoute(studyId, angioscribeAet)
   local instances = {}
   for _, series in ipairs(ParseJson(RestApiGet('/studies/' .. studyId .. '/series'))) do
      if not WRITTEN_BY_ANGIOSCRIBE[series['MainDicomTags']['Modality'] or ''] then
         for _, instanceId in ipairs(series['Instances']) do
            local metadata = ParseJson(RestApiGet('/instances/' .. instanceId .. '/metadata?expand'))
            if metadata['RemoteAET'] ~= angioscribeAet and metadata[ROUTED] == nil then
               table.insert(instances, instanceId)
            end
         end
      end
   end
   return instances
end

function OnStableStudy(studyId, tags, metadata)
   local instances = InstancesToRoute(studyId, AngioscribeAet())
   if #instances == 0 then
      return
   end
   local request = { Resources = instances, Synchronous = true }
   local answer = RestApiPost('/modalities/' .. ANGIOSCRIBE_MODALITY .. '/store', DumpJson(request))
   if answer == nil then
      print('angioscribe route: store of study ' .. studyId .. ' failed, left unmarked')
      return
   end
   for _, instanceId in ipairs(instances) do
      RestApiPut('/instances/' .. instanceId .. '/metadata/' .. ROUTED, 'yes')
   end
   print('angioscribe route: sent ' .. #instances .. ' instances of study ' .. studyId)
end
